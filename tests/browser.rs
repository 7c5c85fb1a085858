//! End-to-end tests of the built page in headless Chromium, driven over WebDriver.
//!
//! They need the release site in `$AE_LAB_DIST` (with the dataset shards) plus Debian's
//! `chromium` and `chromedriver`, so they are ignored by a plain `cargo test`;
//! `cargo xtask test` builds the site and runs them with `--ignored`. Screenshots go
//! to `target/browser-screenshots/`.
#![cfg(not(target_arch = "wasm32"))]

mod harness;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use harness::{Browser, WALL_LEVELS, open_pretrained, serve};
/// A small run that still shows learning: one epoch over 512 images.
const SMALL_RUN: &str = "?dataset=mnist&preset=conv&epochs=1&batch=64&lr=0.003&train_limit=512&test_limit=256&seed=3&autostart=1";

fn dist_dir() -> PathBuf {
    let dir = std::env::var_os("AE_LAB_DIST")
        .map(PathBuf::from)
        .expect("AE_LAB_DIST must name the built site; run these tests with `cargo xtask test`");
    assert!(
        dir.join("index.html").is_file(),
        "{} has no index.html; build it with `cargo xtask build`",
        dir.display()
    );
    dir
}

/// Pixels of the chart in the colour of the training curve and of the test curve.
const CHART_PIXELS: &str = r#"
const canvas = document.querySelector("[data-testid='loss-chart']");
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
const near = (i, r, g, b) => Math.abs(data[i] - r) < 30 && Math.abs(data[i + 1] - g) < 30 && Math.abs(data[i + 2] - b) < 30;
let train = 0, test = 0;
for (let i = 0; i < data.length; i += 4) {
  if (near(i, 33, 102, 172)) train++;
  if (near(i, 178, 24, 43)) test++;
}
return [train, test];
"#;

async fn check_small_run(browser: &Browser) {
    let status = browser.wait_for_run().await;
    assert_eq!(status, "done");
    assert_eq!(browser.text("epoch").await, "1 / 1");

    let history = browser.hidden_text("test-loss-history").await;
    let losses: Vec<f64> = history
        .split(',')
        .map(|value| value.parse().unwrap())
        .collect();
    assert_eq!(losses.len(), 2, "test losses: {history}");
    assert!(losses[1] < losses[0], "test loss did not fall: {history}");
    assert!(browser.text("throughput").await.ends_with("images/s"));

    let chart = browser.json(CHART_PIXELS).await;
    assert!(
        chart[0].as_u64().unwrap() > 50,
        "no training curve: {chart}"
    );
    assert!(chart[1].as_u64().unwrap() > 20, "no test curve: {chart}");
    let wall = browser.json(WALL_LEVELS).await;
    assert_eq!(wall[0], 298, "ten tiles of 28 px with 2 px gaps: {wall}");
    assert!(
        wall[2].as_u64().unwrap() > 8,
        "recreation row is flat: {wall}"
    );
}

/// Runs the small training run with or without WebGPU, checks its figures, saves a
/// screenshot named `name` and returns the backend the page reported.
async fn small_run(webgpu: bool, name: &str) -> String {
    let base = serve(dist_dir()).await;
    let browser = Browser::start(webgpu).await;
    browser
        .client
        .goto(&format!("{base}{SMALL_RUN}"))
        .await
        .unwrap();
    check_small_run(&browser).await;
    let backend = browser.text("backend").await;
    browser.screenshot(name).await;
    browser.close().await;
    backend
}

#[tokio::test]
#[ignore = "needs a built site and Chromium; run with `cargo xtask test`"]
async fn trains_on_webgpu() {
    let backend = small_run(true, "webgpu").await;
    assert_eq!(backend, "WebGPU");
}

#[tokio::test]
#[ignore = "needs a built site and Chromium; run with `cargo xtask test`"]
async fn falls_back_to_cpu() {
    let backend = small_run(false, "cpu-fallback").await;
    assert!(backend.starts_with("CPU (fallback"), "backend: {backend}");
}

#[tokio::test]
#[ignore = "needs a built site and Chromium; run with `cargo xtask test`"]
async fn bad_link_values_get_notices() {
    let base = serve(dist_dir()).await;
    let browser = Browser::start(false).await;
    let link = "?epochs=many&dataset=%3Cb%3Ecifar%3C%2Fb%3E&lr=-1&colour=red";
    browser.client.goto(&format!("{base}{link}")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notices = browser
        .client
        .find(Locator::Css(".notices"))
        .await
        .expect("a notices panel")
        .text()
        .await
        .unwrap();
    // Without `autostart` the page shows the pretrained model and must not train.
    let status = browser.wait_for_status(&["idle"]).await;
    let bold = browser
        .json("return document.querySelectorAll('.notices b').length")
        .await;
    browser.screenshot("bad-link").await;
    browser.close().await;

    for parameter in ["epochs", "dataset", "lr", "colour"] {
        assert!(
            notices.contains(&format!("`{parameter}`")),
            "{parameter} missing from: {notices}"
        );
    }
    assert!(
        notices.contains("<b>cifar</b>"),
        "value shown as text: {notices}"
    );
    assert_eq!(bold, 0, "markup from the link must not render");
    assert_eq!(status, "idle");
}

#[tokio::test]
#[ignore = "needs a built site and Chromium; run with `cargo xtask test`"]
async fn pretrained_wall_on_open() {
    let base = serve(dist_dir()).await;
    // Without WebGPU the page evaluates the 10 000 test images on the CPU backend,
    // which takes seconds here where software WebGPU would take minutes.
    let browser = Browser::start(false).await;
    let seconds = open_pretrained(&browser, &base).await;
    println!("pretrained wall painted {seconds:.2} s after navigation (CPU backend)");
    browser.wait_for_status(&["idle"]).await;
    let model = browser.text("model").await;
    let history = browser.hidden_text("test-loss-history").await;
    let wall = browser.json(WALL_LEVELS).await;
    browser.screenshot("pretrained").await;
    browser.close().await;

    assert!(
        model.starts_with("Pretrained: conv on MNIST"),
        "model: {model}"
    );
    assert_eq!(
        history.split(',').count(),
        1,
        "one evaluation, no training: {history}"
    );
    let loss: f64 = history.parse().unwrap();
    assert!(loss < 0.2, "a trained model, not random weights: {loss}");
    assert!(
        wall[2].as_u64().unwrap() > 20,
        "recreation row is flat: {wall}"
    );
}

async fn click(browser: &Browser, css: &str) {
    let element = browser.client.find(Locator::Css(css)).await.unwrap();
    element.click().await.unwrap();
}

/// Waits up to 30 s for an `.aelab` file in the browser's download folder and returns its
/// path.
async fn wait_for_download(browser: &Browser) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let finished = std::fs::read_dir(&browser.downloads.0)
            .unwrap()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "aelab"));
        if let Some(path) = finished {
            return path;
        }
        assert!(Instant::now() < deadline, "no .aelab download after 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs a built site and Chromium; run with `cargo xtask test`"]
async fn export_import_round_trip() {
    let base = serve(dist_dir()).await;
    let browser = Browser::start(false).await;
    open_pretrained(
        &browser,
        &format!("{base}?dataset=fashion-mnist&test_limit=300&backend=cpu"),
    )
    .await;
    browser.wait_for_status(&["idle"]).await;
    let before = browser.hidden_text("test-loss-history").await;

    click(&browser, "[data-testid='export']").await;
    let exported = wait_for_download(&browser).await;

    let bad = browser.downloads.0.join("not-weights.aelab");
    std::fs::write(&bad, b"<html>surely not weights</html>").unwrap();
    let import = browser
        .client
        .find(Locator::Css("[data-testid='import']"))
        .await
        .unwrap();
    import.send_keys(&bad.display().to_string()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let error = browser.text("model-error").await;
    let model_after_bad = browser.text("model").await;
    let history_after_bad = browser.hidden_text("test-loss-history").await;

    let import = browser
        .client
        .find(Locator::Css("[data-testid='import']"))
        .await
        .unwrap();
    import
        .send_keys(&exported.display().to_string())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !browser.text("model").await.starts_with("Imported") {
        assert!(Instant::now() < deadline, "import did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.wait_for_status(&["idle"]).await;
    let after = browser.hidden_text("test-loss-history").await;
    browser.screenshot("imported").await;
    browser.close().await;

    assert!(error.contains("not a weights file"), "error: {error}");
    assert!(
        model_after_bad.starts_with("Pretrained"),
        "model kept: {model_after_bad}"
    );
    assert_eq!(history_after_bad, before, "metrics kept after a bad file");
    assert_eq!(after, before, "imported weights give the exported metrics");
}

/// Pixels brighter than half-grey in a 28x28 tile.
fn bright_pixels(test_id: &str) -> String {
    format!(
        r#"
const canvas = document.querySelector("[data-testid='{test_id}']");
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let bright = 0;
for (let i = 0; i < data.length; i += 4) if (data[i] > 128) bright++;
return bright;
"#
    )
}

#[tokio::test]
#[ignore = "needs a built site and Chromium; run with `cargo xtask test`"]
async fn drawing_is_recreated() {
    let base = serve(dist_dir()).await;
    let browser = Browser::start(false).await;
    open_pretrained(&browser, &format!("{base}?backend=cpu&test_limit=200")).await;
    browser.wait_for_status(&["idle"]).await;

    let pad = browser
        .client
        .find(Locator::Css("[data-testid='draw-pad']"))
        .await
        .unwrap();
    // Pointer actions do not scroll, so bring the pad into view as a user would.
    browser
        .json("document.querySelector(\"[data-testid='draw-pad']\").scrollIntoView({block: 'center'}); return null")
        .await;
    let step = |x: i64, y: i64| PointerAction::MoveBy {
        duration: Some(Duration::from_millis(40)),
        x,
        y,
    };
    let stroke = MouseActions::new("pen".into())
        .then(PointerAction::MoveToElement {
            element: pad,
            duration: None,
            x: -10,
            y: -90,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(step(5, 45))
        .then(step(5, 45))
        .then(step(0, 45))
        .then(step(0, 45))
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser.client.perform_actions(stroke).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let (input, recreation) = loop {
        let input = browser
            .json(&bright_pixels("draw-input"))
            .await
            .as_u64()
            .unwrap();
        let recreation = browser
            .json(&bright_pixels("draw-recreation"))
            .await
            .as_u64()
            .unwrap();
        if recreation > 0 || Instant::now() > deadline {
            break (input, recreation);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let not_image = browser.downloads.0.join("notes.png");
    std::fs::write(&not_image, b"these are notes, not a picture").unwrap();
    let upload = browser
        .client
        .find(Locator::Css("[data-testid='draw-upload']"))
        .await
        .unwrap();
    upload
        .send_keys(&not_image.display().to_string())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let error = browser.text("draw-error").await;
    browser.screenshot("drawing").await;
    browser.close().await;

    assert!(
        input > 10,
        "the model input has no ink: {input} bright pixels"
    );
    assert!(
        recreation > 5,
        "the recreation is blank: {recreation} bright pixels"
    );
    assert!(error.contains("not an image"), "error: {error}");
}

#[tokio::test]
#[ignore = "needs a built site and Chromium; run with `cargo xtask test`"]
async fn reload_offers_resume() {
    let base = serve(dist_dir()).await;
    let browser = Browser::start(false).await;
    browser
        .client
        .goto(&format!("{base}{SMALL_RUN}&backend=cpu"))
        .await
        .unwrap();
    assert_eq!(browser.wait_for_run().await, "done");
    let trained = browser.hidden_text("test-loss-history").await;
    let trained_loss = trained.split(',').next_back().unwrap().to_string();

    browser.client.goto(&base).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let offer = loop {
        if let Ok(offer) = browser
            .client
            .find(Locator::Css("[data-testid='resume']"))
            .await
        {
            break offer;
        }
        assert!(
            Instant::now() < deadline,
            "no offer to resume after a reload"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = offer.text().await.unwrap();
    browser.wait_for_status(&["idle"]).await;
    offer
        .find(Locator::Css("button.primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !browser.text("model").await.starts_with("Imported") {
        assert!(Instant::now() < deadline, "resuming did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.wait_for_status(&["idle"]).await;
    let resumed = browser.hidden_text("test-loss-history").await;
    browser.screenshot("resumed").await;
    browser.close().await;

    assert!(text.contains("conv on MNIST, 1 epoch,"), "offer: {text}");
    assert_eq!(
        resumed, trained_loss,
        "the resumed model has the trained model's test loss"
    );
}

/// Keeps every WebGPU device the page requests in `window.aeLabTestDevices`, so that the
/// test can destroy them as a driver reset or a GPU crash would.
const KEEP_DEVICES: &str = "<script>window.aeLabTestDevices = []; if (window.GPUAdapter) { const request = GPUAdapter.prototype.requestDevice; GPUAdapter.prototype.requestDevice = async function (...args) { const device = await request.apply(this, args); window.aeLabTestDevices.push(device); return device; }; }</script>";

/// Text of the element with `test_id`, or an empty string while it does not exist.
async fn text_or_empty(browser: &Browser, test_id: &str) -> String {
    let script = format!(
        "const e = document.querySelector(\"[data-testid='{test_id}']\"); return e ? e.textContent : '';"
    );
    browser
        .json(&script)
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
#[ignore = "needs a built site and Chromium; run with `cargo xtask test`"]
async fn lost_gpu_keeps_model() {
    let base = harness::serve_with_head(dist_dir(), Some(KEEP_DEVICES)).await;
    let browser = Browser::start(true).await;
    let link = "?dataset=mnist&preset=conv&epochs=3&batch=64&lr=0.003&train_limit=512&test_limit=256&seed=3&autostart=1";
    browser.client.goto(&format!("{base}{link}")).await.unwrap();
    let started = Instant::now();
    while text_or_empty(&browser, "epoch").await != "2 / 3" {
        assert!(
            started.elapsed() < harness::RUN_TIMEOUT,
            "epoch 2 never began"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let destroyed = browser
        .json("window.aeLabTestDevices.forEach((device) => device.destroy()); return window.aeLabTestDevices.length;")
        .await;
    let status = browser.wait_for_run().await;
    let model = browser.text("model").await;
    browser.screenshot("lost-gpu").await;

    click(&browser, "[data-testid='export']").await;
    let exported = std::fs::read(wait_for_download(&browser).await).unwrap();
    let (_, info) = ae_lab::weights::import(&exported, &burn::prelude::Device::flex())
        .expect("the export after the loss is a valid weights file");

    click(&browser, "button.primary").await;
    let second = browser.wait_for_run().await;
    let backend = browser.text("backend").await;
    browser.close().await;

    assert!(destroyed.as_u64().unwrap() >= 1, "no device to destroy");
    assert!(
        status.starts_with("error: the WebGPU device was lost"),
        "status: {status}"
    );
    assert!(status.contains("is kept"), "status: {status}");
    assert!(model.contains("1 epoch at"), "model: {model}");
    assert_eq!(info.training.epochs, 1);
    assert_eq!(second, "done");
    assert!(
        backend.starts_with("CPU (fallback: the WebGPU device was lost"),
        "backend: {backend}"
    );
}

//! A WebDriver harness shared by the browser tests and `cargo xtask bench`: a static
//! file server on loopback and a headless Chromium session driven through ChromeDriver.
#![allow(
    dead_code,
    reason = "compiled into both the browser tests and xtask, which each use a part"
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// Maximum wait for the page, generous because software WebGPU is slow.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

async fn serve_one(mut stream: TcpStream, root: PathBuf, head: Option<&'static str>) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
        if request.len() > 64 * 1024 {
            return;
        }
    }
    let request = String::from_utf8_lossy(&request);
    let target = request.split_whitespace().nth(1).unwrap_or("/");
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    let file = root.join(relative);

    let response = match (relative.contains(".."), tokio::fs::read(&file).await) {
        (false, Ok(mut body)) => {
            if let (Some(head), "index.html") = (head, relative) {
                let page = String::from_utf8_lossy(&body);
                body = page
                    .replacen("<head>", &format!("<head>{head}"), 1)
                    .into_bytes();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                content_type(&file),
                body.len()
            );
            [head.into_bytes(), body].concat()
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = stream.write_all(&response).await;
}

/// Serves `root` on a free loopback port and returns the base URL.
pub async fn serve(root: PathBuf) -> String {
    serve_with_head(root, None).await
}

/// Serves `root` as [`serve`] does, with `head` inserted at the start of the `<head>`
/// of `index.html` when given, so that a test can change the browser before the page
/// runs.
pub async fn serve_with_head(root: PathBuf, head: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_one(stream, root.clone(), head));
        }
    });
    format!("http://{address}/")
}

/// A Chromium session driven by a ChromeDriver this test started.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
    pub downloads: TempDir,
}

pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Browser {
    pub async fn start(webgpu: bool) -> Self {
        Self::start_with(webgpu, &[]).await
    }

    /// Starts Chromium with `extra` command-line flags besides the usual ones.
    pub async fn start_with(webgpu: bool, extra: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver must be installed (Debian package chromium-driver)");

        let profile = TempDir(
            std::env::temp_dir().join(format!("ae-lab-chromium-{}-{port}", std::process::id())),
        );
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-quic".into(),
            "--window-size=1280,1500".into(),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        if webgpu {
            args.push("--enable-unsafe-webgpu".into());
        }
        args.extend(extra.iter().map(|flag| flag.to_string()));
        let downloads = TempDir(profile.0.with_extension("downloads"));
        std::fs::create_dir_all(&downloads.0).unwrap();
        let prefs = json!({
            "download.default_directory": downloads.0,
            "download.prompt_for_download": false,
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "args": args, "prefs": prefs }),
        );

        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.clone())
                    .connect(&url)
                    .await;
            match attempt {
                Ok(client) => break client,
                Err(error) if Instant::now() > deadline => {
                    panic!("could not start Chromium through ChromeDriver: {error}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
            downloads,
        }
    }

    pub async fn text(&self, test_id: &str) -> String {
        self.client
            .find(Locator::Css(&format!("[data-testid='{test_id}']")))
            .await
            .unwrap_or_else(|error| panic!("no element with data-testid={test_id}: {error}"))
            .text()
            .await
            .unwrap()
    }

    /// Text content, also of elements hidden with CSS. Empty while the page has not
    /// rendered the element yet.
    pub async fn hidden_text(&self, test_id: &str) -> String {
        let script = format!(
            "const element = document.querySelector(\"[data-testid='{test_id}']\"); return element ? element.textContent : ''"
        );
        self.client
            .execute(&script, vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the status is `done` or an error, and returns it.
    pub async fn wait_for_run(&self) -> String {
        self.wait_for_status(&["done"]).await
    }

    /// Waits until the status is one of `ends` or an error, and returns it.
    pub async fn wait_for_status(&self, ends: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let status = self.hidden_text("status").await;
            if ends.contains(&status.as_str()) || status.starts_with("error") {
                println!(
                    "run ended as `{status}` after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return status;
            }
            assert!(
                started.elapsed() < RUN_TIMEOUT,
                "run still `{status}` after {RUN_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn json(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }
}

/// Size of the wall and the number of distinct grey levels in its recreation row.
pub const WALL_LEVELS: &str = r#"
const canvas = document.querySelector("[data-testid='wall']");
const data = canvas.getContext('2d').getImageData(0, 30, canvas.width, 28).data;
const levels = new Set();
for (let i = 0; i < data.length; i += 4) levels.add(data[i]);
return [canvas.width, canvas.height, levels.size];
"#;

/// Opens `url` and waits until the pretrained model's wall is painted, returning the
/// seconds that took; the test metrics may still be computing then.
pub async fn open_pretrained(browser: &Browser, url: &str) -> f64 {
    let started = Instant::now();
    browser.client.goto(url).await.unwrap();
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let painted = browser
            .client
            .execute(WALL_LEVELS, vec![])
            .await
            .ok()
            .and_then(|wall| wall[2].as_u64())
            .is_some_and(|levels| levels > 2);
        if painted {
            return started.elapsed().as_secs_f64();
        }
        let status = browser.hidden_text("status").await;
        assert!(
            !status.starts_with("error"),
            "pretrained model failed: {status}"
        );
        assert!(
            Instant::now() < deadline,
            "no pretrained wall after {RUN_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

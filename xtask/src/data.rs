//! `cargo xtask data`: reads the official IDX files from a local folder or downloads
//! them, checks their SHA-256, and writes compressed shards plus a manifest under
//! `public/data/<dataset>/`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use ae_lab::data::manifest::{FORMAT_VERSION, MANIFEST_FILE, Manifest, ShardEntry, SplitEntry};
use ae_lab::data::official::{OfficialFile, gunzip};
use ae_lab::data::{Dataset, IMAGE_PIXELS, IMAGE_SIDE, ImageSet, Split, idx, sha256_hex, shard};
use anyhow::{Context, Result, bail};
use clap::Args;

/// Environment variable naming the folder with one sub-folder of official files per
/// dataset (`mnist/`, `fashion-mnist/`).
pub const DATA_DIR_VAR: &str = "AE_LAB_DATA_DIR";

#[derive(Args, Clone, Debug, Default)]
pub struct SourceArgs {
    /// Folder with `mnist/` and `fashion-mnist/` sub-folders of official `.gz` IDX files.
    /// Defaults to $AE_LAB_DATA_DIR, then to `../shared/data` beside the checkout when
    /// it exists. Otherwise the files are downloaded and cached in `target/`.
    #[arg(long, value_name = "DIR")]
    pub source: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Dataset to convert: `mnist`, `fashion-mnist` or `all`.
    #[arg(long, default_value = "all")]
    pub dataset: String,
    /// Training images per shard.
    #[arg(long, default_value_t = 5000)]
    pub shard_size: usize,
    /// Rewrite shards even when the manifest is already up to date.
    #[arg(long)]
    pub force: bool,
}

/// Source of the official files.
pub enum Source {
    Folder(PathBuf),
    Download { cache: PathBuf },
}

impl SourceArgs {
    /// Returns the folder that contains (or, after a download, will contain) the official files.
    pub fn official_dir(&self) -> PathBuf {
        match self.resolve() {
            Source::Folder(dir) => dir,
            Source::Download { cache } => cache,
        }
    }

    pub fn resolve(&self) -> Source {
        if let Some(dir) = &self.source {
            return Source::Folder(dir.clone());
        }
        if let Some(dir) = std::env::var_os(DATA_DIR_VAR) {
            return Source::Folder(PathBuf::from(dir));
        }
        let sibling = crate::project_root().join("../shared/data");
        if sibling.join("mnist").is_dir() {
            return Source::Folder(sibling);
        }
        Source::Download {
            cache: crate::project_root().join("target/official-data"),
        }
    }
}

pub fn run(args: &DataArgs) -> Result<()> {
    let datasets: Vec<Dataset> = match args.dataset.as_str() {
        "all" => Dataset::ALL.to_vec(),
        other => vec![other.parse().map_err(anyhow::Error::msg)?],
    };
    if args.shard_size == 0 {
        bail!("--shard-size must be at least 1");
    }
    for dataset in datasets {
        make_shards(dataset, &args.source, args.shard_size, args.force)?;
    }
    Ok(())
}

/// Makes the shards of every dataset unless they are already in place.
pub fn ensure_all(source: &SourceArgs) -> Result<()> {
    for dataset in Dataset::ALL {
        make_shards(dataset, source, 5000, false)?;
    }
    Ok(())
}

fn output_dir(dataset: Dataset) -> PathBuf {
    crate::project_root()
        .join("public/data")
        .join(dataset.slug())
}

/// True when the manifest exists and every shard it lists is present with its checksum.
fn shards_up_to_date(dir: &Path) -> bool {
    let Ok(json) = fs::read_to_string(dir.join(MANIFEST_FILE)) else {
        return false;
    };
    let Ok(manifest) = Manifest::parse(&json) else {
        return false;
    };
    manifest
        .train
        .shards
        .iter()
        .chain(&manifest.test.shards)
        .all(|entry| {
            fs::read(dir.join(&entry.file))
                .map(|bytes| bytes.len() == entry.bytes && sha256_hex(&bytes) == entry.sha256)
                .unwrap_or(false)
        })
}

fn make_shards(
    dataset: Dataset,
    source: &SourceArgs,
    shard_size: usize,
    force: bool,
) -> Result<()> {
    let dir = output_dir(dataset);
    if !force && shards_up_to_date(&dir) {
        println!(
            "{}: shards up to date in {}",
            dataset.title(),
            dir.display()
        );
        return Ok(());
    }

    let source = source.resolve();
    let train = load_split(dataset, Split::Train, &source)?;
    let test = load_split(dataset, Split::Test, &source)?;

    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let train_entry = write_split(&dir, "train", &train, shard_size)?;
    let test_entry = write_split(&dir, "test", &test, test.len())?;
    let (pixel_mean, pixel_std) = train.pixel_stats();
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        dataset,
        image_shape: [IMAGE_SIDE, IMAGE_SIDE],
        pixel_mean,
        pixel_std,
        train: train_entry,
        test: test_entry,
    };
    let json = serde_json::to_string_pretty(&manifest)?;
    fs::write(dir.join(MANIFEST_FILE), json)?;
    let total: usize = manifest
        .train
        .shards
        .iter()
        .chain(&manifest.test.shards)
        .map(|entry| entry.bytes)
        .sum();
    println!(
        "{}: {} training and {} test images in {} shards, {:.1} MB, written to {}",
        dataset.title(),
        train.len(),
        test.len(),
        manifest.train.shards.len() + manifest.test.shards.len(),
        total as f64 / 1e6,
        dir.display()
    );
    Ok(())
}

fn write_split(dir: &Path, name: &str, set: &ImageSet, shard_size: usize) -> Result<SplitEntry> {
    let mut shards = Vec::new();
    for (index, start) in (0..set.len()).step_by(shard_size.max(1)).enumerate() {
        let end = (start + shard_size).min(set.len());
        let part = ImageSet::new(
            set.pixels[start * IMAGE_PIXELS..end * IMAGE_PIXELS].to_vec(),
            set.labels[start..end].to_vec(),
        )
        .map_err(anyhow::Error::msg)?;
        let compressed = shard::encode(&part);
        let file = format!("{name}-{index:02}.shard");
        fs::write(dir.join(&file), &compressed)?;
        shards.push(ShardEntry::describe(file, &part, &compressed));
    }
    Ok(SplitEntry {
        count: set.len(),
        shards,
    })
}

pub fn load_split(dataset: Dataset, split: Split, source: &Source) -> Result<ImageSet> {
    let files = dataset.official(split);
    let images = fetch_official(dataset, &files.images, source)?;
    let labels = fetch_official(dataset, &files.labels, source)?;
    idx::parse_pair(&images, &labels)
        .with_context(|| format!("{} {:?} files are not valid IDX", dataset.title(), split))
}

/// Returns the decompressed bytes of `file` after checking their SHA-256.
fn fetch_official(dataset: Dataset, file: &OfficialFile, source: &Source) -> Result<Vec<u8>> {
    let path = match source {
        Source::Folder(dir) => {
            let path = dir.join(dataset.slug()).join(file.name);
            if !path.is_file() {
                bail!(
                    "{} not found; point --source or ${DATA_DIR_VAR} at a folder with `mnist/` and `fashion-mnist/` sub-folders of the official .gz files",
                    path.display()
                );
            }
            path
        }
        Source::Download { cache } => {
            let path = cache.join(dataset.slug()).join(file.name);
            if !path.is_file() {
                download(dataset, file.name, &path)?;
            }
            path
        }
    };

    let compressed = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let raw =
        gunzip(&compressed).map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))?;
    let actual = sha256_hex(&raw);
    if actual != file.sha256 {
        if matches!(source, Source::Download { .. }) {
            let _ = fs::remove_file(&path);
        }
        bail!(
            "{} does not match the official {} file: its decompressed SHA-256 is {actual}, expected {}",
            path.display(),
            dataset.title(),
            file.sha256
        );
    }
    Ok(raw)
}

fn download(dataset: Dataset, name: &str, path: &Path) -> Result<()> {
    fs::create_dir_all(path.parent().expect("cache paths have a parent"))?;
    let mut failures = Vec::new();
    for base in dataset.download_bases() {
        let url = format!("{base}{name}");
        println!("downloading {url}");
        match ureq::get(&url).call() {
            Ok(response) => {
                let mut bytes = Vec::new();
                response
                    .into_body()
                    .into_reader()
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("download of {url} was cut off"))?;
                let partial = path.with_extension("part");
                fs::write(&partial, &bytes)?;
                fs::rename(&partial, path)?;
                return Ok(());
            }
            Err(error) => failures.push(format!("{url}: {error}")),
        }
    }
    bail!(
        "could not download {name} for {}:\n  {}\nwithout network access, pass --source or set ${DATA_DIR_VAR} to a folder with the official files",
        dataset.title(),
        failures.join("\n  ")
    )
}

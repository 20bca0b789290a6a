//! The TOML configuration (`/etc/vzsnap/vzsnap.toml` by default, `--config`).
//!
//! One struct per table, each with `deny_unknown_fields`, so a typo is an error rather than a
//! silently ignored setting. Tables other subcommands need are added as one more field of
//! [`Config`] (with `#[serde(default)]` when the table is optional) and their own struct.
//! The annotated example is `dist/vzsnap.toml`; a test parses it.
//!
//! ```toml
//! [store]            # where volumes live (required)
//! [store.properties] # ZFS properties of new volumes
//! [ingest]           # dump directories and how ingest behaves
//! [prune]            # retention (keep-* policy, per-VM overrides)
//! [restore]          # where `vzsnap restore` writes archives, zstd threads
//! [mount]            # where `vzsnap mount` mounts and keeps its state
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ingest::retention::PruneConfig;
use ingest::sync::ZeroMode;
use serde::Deserialize;
use vma::vzdump::VmId;

/// Where the config lives unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/vzsnap/vzsnap.toml";

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    #[serde(default)]
    pub prune: PruneConfig,
    #[serde(default)]
    pub restore: RestoreConfig,
    #[serde(default)]
    pub mount: MountConfig,
}

/// `[restore]`: defaults of `vzsnap restore`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreConfig {
    /// Where restored archives go (`--to` overrides); default: the first `[ingest]
    /// dump_dirs` entry, i.e. where PVE finds its backups.
    #[serde(default)]
    pub dump_dir: Option<PathBuf>,
    /// zstd worker threads (`--threads` overrides); default: one per CPU.
    #[serde(default)]
    pub threads: Option<u32>,
}

impl Config {
    /// Where `vzsnap restore` writes without `--to`.
    pub fn restore_dir(&self) -> PathBuf {
        self.restore
            .dump_dir
            .clone()
            .unwrap_or_else(|| self.ingest.dump_dirs[0].clone())
    }
}

/// `[mount]`: where `vzsnap mount` puts things.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountConfig {
    /// Parent of the default mountpoints `<root>/<VMID>-<DATE>[-<disk>]`.
    #[serde(default = "default_mount_root")]
    pub root: PathBuf,
    /// One JSON file per active mount (what `vzsnap umount` undoes). On /run by default:
    /// after a reboot the mounts are gone too, and `vzsnap umount --all` removes the clones.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
}

fn default_mount_root() -> PathBuf {
    PathBuf::from(restore::mount::DEFAULT_MOUNT_ROOT)
}

fn default_state_dir() -> PathBuf {
    PathBuf::from(restore::mount::DEFAULT_STATE_DIR)
}

impl Default for MountConfig {
    fn default() -> Self {
        MountConfig {
            root: default_mount_root(),
            state_dir: default_state_dir(),
        }
    }
}

/// `[store]`: the ZFS dataset or btrfs directory that holds one volume per VM.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `zfs:<dataset>` (e.g. `zfs:tank/vzsnap`) or `btrfs:<absolute path>`.
    pub spec: String,
    /// Properties for newly created volumes (`zfs create -o key=value`), merged over
    /// [`default_properties`]; btrfs ignores them. Existing volumes are not changed.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// Defaults for new per-VM datasets.
///
/// Chosen by the ZFS sweep of `scripts/bench` (docs/benchmarks.md):
/// - `recordsize=16K`: every changed 4 KiB block rewrites its whole record. At 1 % scattered
///   churn a day's snapshot costs 2.6 × as much at 64K and 4.6 × at 128K; at clustered churn
///   64K saves only 12 % over a month. 4K records cannot be compressed on ashift=12 pools.
/// - `compression=lz4`: zstd stores 11–16 % less, but every nightly ingest reads the whole
///   image back and pays the decompression (1.1–1.9 × the ingest time in the test VM). With
///   compression on, ZFS stores all-zero records as holes.
/// - `atime=off`: reading a snapshot's files must not count as a change of the volume.
pub fn default_properties() -> BTreeMap<String, String> {
    [
        ("recordsize", "16K"),
        ("compression", "lz4"),
        ("atime", "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// vzdump dump directories to read (PVE's `dir` storage: `<path>/dump`).
    #[serde(default = "default_dump_dirs")]
    pub dump_dirs: Vec<PathBuf>,
    /// Archives modified less than this many seconds ago are left for the next run (a copy
    /// may still be arriving).
    #[serde(default = "default_settle")]
    pub settle_seconds: u64,
    /// Only these VMIDs (empty: all).
    #[serde(default)]
    pub include: Vec<u32>,
    /// Never these VMIDs.
    #[serde(default)]
    pub exclude: Vec<u32>,
    /// Delete an archive with its `.log` and `.notes` once its snapshot exists. Protected
    /// backups (`.protected`) are never deleted.
    #[serde(default)]
    pub delete_input: bool,
    /// The single-instance lock; must be on a local file system.
    #[serde(default = "default_lock_file")]
    pub lock_file: PathBuf,
    /// Prometheus textfile to write after each run (e.g.
    /// `/var/lib/prometheus/node-exporter/vzsnap.prom`); unset: none.
    #[serde(default)]
    pub metrics_file: Option<PathBuf>,
    /// Also ingest backups older than the VM's newest snapshot.
    #[serde(default)]
    pub force: bool,
    /// How blocks that became zero are zeroed: `punch` (hole) or `write` (zeros).
    #[serde(default)]
    pub zero_mode: ZeroMode,
}

fn default_dump_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("/var/lib/vz/dump")]
}

fn default_settle() -> u64 {
    300
}

fn default_lock_file() -> PathBuf {
    PathBuf::from("/run/vzsnap/ingest.lock")
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            dump_dirs: default_dump_dirs(),
            settle_seconds: default_settle(),
            include: Vec::new(),
            exclude: Vec::new(),
            delete_input: false,
            lock_file: default_lock_file(),
            metrics_file: None,
            force: false,
            zero_mode: ZeroMode::default(),
        }
    }
}

impl Config {
    /// Parses and checks config text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path) -> anyhow::Result<Config> {
        let c: Config = toml::from_str(text)
            .with_context(|| format!("{}: invalid configuration", origin.display()))?;
        c.validate()
            .with_context(|| format!("{}: invalid configuration", origin.display()))?;
        Ok(c)
    }

    /// Reads the config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the configuration {} (start from dist/vzsnap.toml, or pass --config)",
                path.display()
            )
        })?;
        Config::parse(&text, path)
    }

    /// Like [`Config::load`], but a missing file at the default path yields a config built
    /// from `store_spec` alone (for `--store` runs without a config file).
    pub fn load_or_default(path: &Path, store_spec: Option<&str>) -> anyhow::Result<Config> {
        if path == Path::new(DEFAULT_PATH)
            && !path.exists()
            && let Some(spec) = store_spec
        {
            let c = Config {
                store: StoreConfig {
                    spec: spec.to_string(),
                    properties: BTreeMap::new(),
                },
                ingest: IngestConfig::default(),
                prune: PruneConfig::default(),
                restore: RestoreConfig::default(),
                mount: MountConfig::default(),
            };
            c.validate()?;
            return Ok(c);
        }
        Config::load(path)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(self.store.spec.starts_with("zfs:") || self.store.spec.starts_with("btrfs:")) {
            bail!(
                "[store] spec {:?}: expected zfs:<dataset> or btrfs:<absolute path>",
                self.store.spec
            );
        }
        for (k, v) in &self.store.properties {
            let ok =
                |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
            if !ok(k) || !ok(v) {
                bail!(
                    "[store.properties] {k:?} = {v:?}: names and values must be printable, without spaces or '='"
                );
            }
        }
        let i = &self.ingest;
        if i.dump_dirs.is_empty() {
            bail!("[ingest] dump_dirs is empty");
        }
        for d in &i.dump_dirs {
            if !d.is_absolute() {
                bail!(
                    "[ingest] dump_dirs: {} is not an absolute path",
                    d.display()
                );
            }
        }
        if !i.lock_file.is_absolute() {
            bail!(
                "[ingest] lock_file: {} is not an absolute path",
                i.lock_file.display()
            );
        }
        for id in i.include.iter().chain(&i.exclude) {
            VmId::new(*id).with_context(|| "[ingest] include/exclude")?;
        }
        self.prune.time_zone().context("[prune] timezone")?;
        if let Some(d) = &self.restore.dump_dir
            && !d.is_absolute()
        {
            bail!(
                "[restore] dump_dir: {} is not an absolute path",
                d.display()
            );
        }
        if self.restore.threads.is_some_and(|t| t > 256) {
            bail!("[restore] threads: at most 256");
        }
        for (k, p) in [
            ("root", &self.mount.root),
            ("state_dir", &self.mount.state_dir),
        ] {
            if !p.is_absolute() {
                bail!("[mount] {k}: {} is not an absolute path", p.display());
            }
        }
        for vmid in self.prune.vm.keys() {
            vmid.parse::<VmId>()
                .with_context(|| format!("[prune.vm.{vmid}]"))?;
        }
        Ok(())
    }

    /// Volume properties: the defaults with `[store.properties]` on top.
    pub fn volume_properties(&self) -> Vec<(String, String)> {
        let mut p = default_properties();
        p.extend(self.store.properties.clone());
        p.into_iter().collect()
    }

    /// Opens the configured store.
    pub fn open_store(&self) -> anyhow::Result<Box<dyn store::Store>> {
        store::open(&self.store.spec)
            .with_context(|| format!("opening the store {}", self.store.spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/vzsnap.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let c = Config::parse(&text, &path).unwrap();
        assert_eq!(c.store.spec, "zfs:tank/vzsnap");
        assert_eq!(c.ingest.dump_dirs, [PathBuf::from("/var/lib/vz/dump")]);
        assert_eq!(c.ingest.settle_seconds, 300);
        assert!(!c.ingest.delete_input);
        assert_eq!(c.ingest.zero_mode, ZeroMode::Punch);
        let props = c.volume_properties();
        assert!(
            props.contains(&("recordsize".into(), "16K".into())),
            "{props:?}"
        );
        assert!(props.contains(&("atime".into(), "off".into())));
        assert!(c.prune.after_ingest);
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::parse("[store]\nspec = \"btrfs:/srv/vzsnap\"\n", Path::new("x")).unwrap();
        assert_eq!(c.ingest.lock_file, PathBuf::from("/run/vzsnap/ingest.lock"));
        assert_eq!(c.ingest.settle_seconds, 300);
        assert_eq!(
            c.volume_properties(),
            default_properties().into_iter().collect::<Vec<_>>()
        );
        assert!(c.ingest.metrics_file.is_none());
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let bad = [
            "[store]\nspec = \"zfs:tank\"\nextra = 1\n",
            "[store]\nspec = \"lvm:tank\"\n",
            "[store]\nspec = \"zfs:tank\"\n[ingest]\ndump_dir = [\"/d\"]\n",
            "[store]\nspec = \"zfs:tank\"\n[ingest]\ndump_dirs = [\"relative\"]\n",
            "[store]\nspec = \"zfs:tank\"\n[ingest]\ninclude = [42]\n",
            "[store]\nspec = \"zfs:tank\"\n[ingest]\nzero_mode = \"trim\"\n",
            "[store]\nspec = \"zfs:tank\"\n[store.properties]\nrecordsize = \"64K -o x\"\n",
            "[ingest]\nsettle_seconds = 1\n",
        ];
        for t in bad {
            assert!(Config::parse(t, Path::new("x")).is_err(), "{t}");
        }
        let e = Config::parse(bad[0], Path::new("/etc/vzsnap/vzsnap.toml")).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("/etc/vzsnap/vzsnap.toml") && msg.contains("extra"),
            "{msg}"
        );
    }

    #[test]
    fn restore_and_mount_tables() {
        let c = Config::parse("[store]\nspec = \"btrfs:/srv/vzsnap\"\n", Path::new("x")).unwrap();
        assert_eq!(c.restore_dir(), PathBuf::from("/var/lib/vz/dump"));
        assert_eq!(c.mount.root, PathBuf::from("/run/vzsnap/mounts"));
        assert_eq!(c.mount.state_dir, PathBuf::from("/run/vzsnap/state"));
        let c = Config::parse(
            "[store]\nspec = \"zfs:t\"\n[restore]\ndump_dir = \"/mnt/pve/nfs/dump\"\nthreads = 4\n[mount]\nroot = \"/srv/m\"\n",
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(c.restore_dir(), PathBuf::from("/mnt/pve/nfs/dump"));
        assert_eq!(c.restore.threads, Some(4));
        assert_eq!(c.mount.root, PathBuf::from("/srv/m"));
        for bad in [
            "[store]\nspec = \"zfs:t\"\n[restore]\nto = \"/x\"\n",
            "[store]\nspec = \"zfs:t\"\n[restore]\ndump_dir = \"rel\"\n",
            "[store]\nspec = \"zfs:t\"\n[mount]\nstate_dir = \"rel\"\n",
            "[store]\nspec = \"zfs:t\"\n[mount]\nmountpoint = \"/x\"\n",
        ] {
            assert!(Config::parse(bad, Path::new("x")).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_path_without_file_uses_store_flag() {
        let c = Config::load_or_default(Path::new(DEFAULT_PATH), Some("btrfs:/x"));
        if Path::new(DEFAULT_PATH).exists() {
            return; // a real installation: the file wins
        }
        assert_eq!(c.unwrap().store.spec, "btrfs:/x");
        assert!(
            Config::load_or_default(Path::new("/nonexistent/vzsnap.toml"), Some("btrfs:/x"))
                .is_err()
        );
    }
}

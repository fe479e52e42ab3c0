//! `airlock.yaml`: the target registry, the mapping, the pull secret and the policy, each also
//! settable by a flag. Read with serde-saphyr (not serde_yml: RUSTSEC-2025-0068); unknown keys are
//! errors, so a typo never silently falls back to a default.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "airlock.yaml";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Target `host[:port][/prefix]`.
    pub registry: Option<String>,
    /// `replace-host` or `keep-host`.
    pub mapping: Option<String>,
    /// `--mapping`, already parsed: it wins over `mapping`.
    #[serde(skip)]
    pub mode_flag: Option<rewrite::Mode>,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    pub pull_secret: Option<String>,
    #[serde(default)]
    pub policy: PolicyConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub allow_registries: Vec<String>,
    #[serde(default)]
    pub deny_latest: Option<bool>,
    #[serde(default)]
    pub require_digest: Option<bool>,
}

/// Flags that say where images go, shared by every verb that names images in the private
/// registry (rewrite, push, mirror, serve); each overrides the file. Verbs that also judge images
/// take [`ConfigArgs`], which adds the policy: a flag a verb ignores is not offered by it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MappingArgs {
    /// Configuration file [default: ./airlock.yaml when it exists].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Target registry, host[:port][/prefix].
    #[arg(long, visible_alias = "to", value_name = "HOST[:PORT][/PREFIX]")]
    pub registry: Option<String>,

    /// How public names map under the target: replace-host or keep-host.
    #[arg(long, value_name = "MODE", value_parser = mode_parser())]
    pub mapping: Option<rewrite::Mode>,

    /// A mapping rule, FROM=TO (prefix of the normalised name); repeatable, first match wins.
    #[arg(long = "rule", value_name = "FROM=TO", value_parser = parse_rule)]
    pub rules: Vec<RuleConfig>,
}

/// The mapping flags and the policy's (check, audit, webhook); each overrides the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub target: MappingArgs,

    /// Name of the imagePullSecret for the private registry.
    #[arg(long, value_name = "NAME")]
    pub pull_secret: Option<String>,

    /// A registry images may come from (host[:port][/prefix]); repeatable.
    #[arg(long = "allow-registry", value_name = "REGISTRY")]
    pub allow_registries: Vec<String>,

    /// Flag `latest` tags and missing tags.
    #[arg(long)]
    pub deny_latest: bool,

    /// Require every reference to carry a digest.
    #[arg(long)]
    pub require_digest: bool,
}

/// The settings in force: the file, then the flags on top.
#[derive(Debug, Default)]
pub struct Settings {
    pub config: Config,
    /// Where the settings came from, for messages.
    pub origin: Option<PathBuf>,
}

impl MappingArgs {
    pub fn load(&self) -> anyhow::Result<Settings> {
        let path = match &self.config {
            Some(p) => Some(p.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()),
        };
        let mut config = match &path {
            Some(p) => read(p)?,
            None => Config::default(),
        };
        if let Some(r) = &self.registry {
            config.registry = Some(r.clone());
        }
        config.mode_flag = self.mapping;
        config.rules.extend(self.rules.iter().cloned());
        Ok(Settings {
            config,
            origin: path,
        })
    }
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<Settings> {
        let mut settings = self.target.load()?;
        let config = &mut settings.config;
        if let Some(s) = &self.pull_secret {
            config.pull_secret = Some(s.clone());
        }
        config
            .policy
            .allow_registries
            .extend(self.allow_registries.iter().cloned());
        if self.deny_latest {
            config.policy.deny_latest = Some(true);
        }
        if self.require_digest {
            config.policy.require_digest = Some(true);
        }
        Ok(settings)
    }
}

/// `--mapping`: the modes the help lists, parsed into the Mapping's own type.
fn mode_parser() -> impl clap::builder::TypedValueParser<Value = rewrite::Mode> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["replace-host", "keep-host"])
        .try_map(|m| m.parse::<rewrite::Mode>())
}

/// `--rule FROM=TO`, split when the flags are parsed (a usage error, exit 2).
fn parse_rule(text: &str) -> Result<RuleConfig, String> {
    match text.split_once('=') {
        Some((from, to)) => Ok(RuleConfig {
            from: from.to_string(),
            to: to.to_string(),
        }),
        None => Err(format!("{text:?}: write it as FROM=TO")),
    }
}

fn read(path: &Path) -> anyhow::Result<Config> {
    // Settings are small; the verbs' --max-file-size is about the configuration they scan.
    let text = crate::fsutil::read_text_limited(path, crate::inputs::DEFAULT_MAX_FILE_SIZE)?;
    serde_saphyr::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

impl Settings {
    /// The mapping to the private registry; an error naming the setting when there is none.
    pub fn mapping(&self) -> anyhow::Result<rewrite::Mapping> {
        let origin = self
            .origin
            .as_ref()
            .map_or("flags".to_string(), |p| p.display().to_string());
        let Some(target) = &self.config.registry else {
            bail!("no target registry: set `registry:` in {DEFAULT_CONFIG} or pass --registry");
        };
        let mode = match (self.config.mode_flag, &self.config.mapping) {
            (Some(m), _) => m,
            (None, Some(m)) => m.parse().with_context(|| format!("in {origin}"))?,
            (None, None) => rewrite::Mode::default(),
        };
        let rules = self
            .config
            .rules
            .iter()
            .map(|r| rewrite::Rule {
                from: r.from.clone(),
                to: r.to.clone(),
            })
            .collect();
        rewrite::Mapping::new(target, mode, rules).with_context(|| format!("in {origin}"))
    }
}

//! `parc verify TARGET [--on PATTERN]`: which plays and hosts, then the result
//! in the format asked for.

use std::path::Path;

use super::session::{Session, select};
use super::{Cli, VerifyArgs, VerifyFormat};
use crate::confine::Tree;
use crate::engine::audit::{self, VerifyPlay};
use crate::engine::rollout::select_hosts;
use crate::error::{Ended, ParcError};
use crate::location;
use crate::playbook::{self, Play, PlaySpec, Playbook};
use crate::profile::{self, ProfileError};
use crate::verify::report;

pub async fn verify(cli: &Cli, args: &VerifyArgs) -> Result<Ended, ParcError> {
    let playbook = load_target(&args.target, args.on.as_deref(), &cli.allow_outside)?
        .with_tags(&args.tags.filter());
    if playbook.plays.iter().all(|p| p.profile.verify.is_empty()) {
        return Err(ParcError::NothingToVerify {
            target: args.target.clone(),
        });
    }
    let extra_vars = args.extra_vars.parse()?;
    let display = crate::ui::Options {
        show_output: false,
        show_changes: false,
    };
    let (s, play_hosts) = Session::start(cli, args.parallel, display, Some(&playbook), |ctx| {
        let on = args
            .on
            .as_deref()
            .map(|p| select(ctx, cli, p))
            .transpose()?;
        Ok(select_hosts(ctx, &playbook, on.as_deref())?)
    })?;
    let plays = playbook
        .plays
        .iter()
        .zip(play_hosts)
        .map(|(play, hosts)| VerifyPlay::new(play, hosts, &extra_vars))
        .collect();
    let (results, summary) = audit::run(&s.ctx, &s.run_id, plays).await;
    s.finish(cli).await;

    let text = match args.format {
        VerifyFormat::Table => report::table(&results),
        VerifyFormat::Json => report::json(&results),
        VerifyFormat::Junit => report::junit(&results).map_err(|e| ParcError::Output {
            what: "the JUnit report",
            source: std::io::Error::other(e),
        })?,
    };
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| ParcError::WriteFile {
            path: path.clone(),
            source,
        })?,
        // With --json, stdout carries the event stream; the result is in its events.
        None if cli.json => {}
        None => super::commands::print(&text, "the verification result")?,
    }
    Ok(Ended::Run(summary))
}

/// A playbook is a YAML list of plays, a profile a map: the file says which it
/// is. A bare name is a profile in ./profiles, the directory playbooks use
/// when none sits beside them.
fn load_target(
    target: &str,
    on: Option<&str>,
    allow_outside: &[std::path::PathBuf],
) -> Result<Playbook, ParcError> {
    let path = Path::new(target);
    let bad = |reason: String| ParcError::VerifyTarget {
        target: target.to_string(),
        reason,
    };
    let (dir, name) = if path.is_file() {
        let text = crate::confine::read_regular_to_string(path).map_err(|e| bad(e.to_string()))?;
        location::prescan(path, &text).map_err(ProfileError::from)?;
        let doc: serde_norway::Value = serde_norway::from_str(&text)
            .map_err(|e| ProfileError::from(location::yaml_refusal(path, &text, e)))?;
        if doc.is_sequence() {
            return Ok(playbook::load(path, allow_outside)?);
        }
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (dir, name)
    } else if target.contains('/') || target.ends_with(".yml") || target.ends_with(".yaml") {
        return Err(bad("no such file".into()));
    } else {
        (std::path::PathBuf::from("profiles"), target.to_string())
    };
    let profile = profile::load(&Tree::new(&dir, allow_outside), &name)?;
    let Some(on) = on else {
        return Err(ParcError::VerifyNeedsHosts {
            profile: profile.name,
        });
    };
    let play = Play {
        name: profile.name.clone(),
        spec: PlaySpec {
            hosts: on.to_string(),
            profiles: vec![name],
            ..PlaySpec::default()
        },
        profile,
        fallback: None,
        image: None,
    };
    Ok(Playbook {
        path: profile::profile_path(&dir, &play.spec.profiles[0]),
        plays: vec![play],
    })
}

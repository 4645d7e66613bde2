//! `gatehouse audit`: print the audit trail from the configured store,
//! newest first, as a table or as JSON lines.

use crate::audit::parse_time;
use crate::settings::Config;
use crate::store::{unix_now, AuditQuery, AuditRecord};
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only events with this user as actor or target.
    #[arg(long)]
    user: Option<String>,
    /// Only this action (`sign_in`, `user.update`, …).
    #[arg(long)]
    action: Option<String>,
    /// From this time on: unix seconds, RFC 3339, a date, or a duration
    /// back from now (`24h`, `7d`).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// The most events to print.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(config: &Config, args: AuditArgs) -> ExitCode {
    let now = unix_now();
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|t| parse_time(t, now).map_err(|e| format!("--{flag}: {e}")))
            .transpose()
    };
    let (since, until) = match (time("since", &args.since), time("until", &args.until)) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
    };
    let query = AuditQuery {
        user: args.user,
        action: args.action,
        since,
        until,
        offset: 0,
        limit: args.limit.max(1),
    };
    super::with_store(config, |store| async move {
        match store.audit_events(query).await {
            Ok((events, total)) => {
                if args.json {
                    for e in &events {
                        println!("{}", json_line(e));
                    }
                } else {
                    print_table(&events);
                    if total > events.len() as i64 {
                        eprintln!("({} of {total} events; --limit shows more)", events.len());
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gatehouse: {e}");
                ExitCode::from(1)
            }
        }
    })
}

fn rfc3339(t: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
    )
    .to_string()
}

fn json_line(e: &AuditRecord) -> String {
    let details: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
    serde_json::json!({
        "id": e.id, "at": rfc3339(e.at), "actor": e.actor, "action": e.action,
        "target": e.target, "ip": e.ip, "user_agent": e.user_agent,
        "outcome": e.outcome, "details": details,
    })
    .to_string()
}

fn print_table(events: &[AuditRecord]) {
    println!(
        "{:<20} {:<16} {:<16} {:<16} {:<8} {:<15} DETAILS",
        "TIME", "ACTION", "ACTOR", "TARGET", "OUTCOME", "IP"
    );
    for e in events {
        println!(
            "{:<20} {:<16} {:<16} {:<16} {:<8} {:<15} {}",
            rfc3339(e.at),
            e.action,
            e.actor.as_deref().unwrap_or("-"),
            e.target.as_deref().unwrap_or("-"),
            e.outcome,
            e.ip.as_deref().unwrap_or("-"),
            e.details,
        );
    }
}

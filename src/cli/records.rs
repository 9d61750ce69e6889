//! `vkyc case ...` and `vkyc retention ...`: legal holds, relationship ends, what the
//! retention rules will purge, and a purge pass on demand.

use crate::config::Config;
use crate::domain::retention::{closed_sub_statuses, cutoffs, due_at, ist_date, DAY_MS};
use crate::domain::status::SubStatus;
use crate::operations::{self, for_cli, Actor};
use crate::store::Store;
use clap::{Args, Subcommand};

/// How a command names its case.
#[derive(Args)]
pub struct CaseRef {
    /// The case's reference id (the API's `reference_id`).
    #[arg(long)]
    pub reference_id: Option<i64>,
    /// The merchant's `verification_id`.
    #[arg(long)]
    pub verification_id: Option<String>,
    /// The merchant's client id, when several merchants used that verification_id.
    #[arg(long)]
    pub merchant: Option<String>,
}

#[derive(Subcommand)]
pub enum CaseCommand {
    /// Place a legal hold: the case's data is never purged while it stands.
    Hold {
        #[command(flatten)]
        case: CaseRef,
        /// Why (kept with the hold and in the staff audit).
        #[arg(long)]
        reason: String,
    },
    /// Release a legal hold.
    Release {
        #[command(flatten)]
        case: CaseRef,
        #[arg(long)]
        reason: String,
    },
    /// Record the day the business relationship ended (approved cases), from which the
    /// record is kept `[retention] approved_years`.
    RelationshipEnd {
        #[command(flatten)]
        case: CaseRef,
        /// YYYY-MM-DD, not in the future.
        #[arg(long)]
        date: String,
    },
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// List the cases whose personal data falls due for removal in the next N days.
    Report {
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Run one purge pass now (the server's worker runs one every purge_interval_seconds).
    Purge,
}

pub async fn case(store: &Store, command: CaseCommand) -> anyhow::Result<()> {
    let actor = Actor::Cli;
    match command {
        CaseCommand::Hold { case, reason } => {
            let request = find(store, &case).await?;
            operations::cases::hold(store, &actor, &request, &reason)
                .await
                .map_err(for_cli)?;
            println!(
                "case {} ({}) is on legal hold",
                request.id, request.verification_id
            );
        }
        CaseCommand::Release { case, reason } => {
            let request = find(store, &case).await?;
            operations::cases::release(store, &actor, &request, &reason)
                .await
                .map_err(for_cli)?;
            println!(
                "case {} ({}): legal hold released",
                request.id, request.verification_id
            );
        }
        CaseCommand::RelationshipEnd { case, date } => {
            let request = find(store, &case).await?;
            operations::cases::relationship_end(store, &actor, &request, &date)
                .await
                .map_err(for_cli)?;
            println!(
                "case {} ({}): relationship ended {date}",
                request.id, request.verification_id
            );
        }
    }
    Ok(())
}

async fn find(store: &Store, c: &CaseRef) -> anyhow::Result<crate::store::Request> {
    operations::cases::find(
        store,
        c.reference_id,
        c.verification_id.as_deref(),
        c.merchant.as_deref(),
    )
    .await
    .map_err(for_cli)
}

pub async fn retention(
    store: &Store,
    config: &Config,
    command: RetentionCommand,
) -> anyhow::Result<()> {
    let now = crate::clock::now_ms();
    match command {
        RetentionCommand::Report { days } => {
            let settings = &config.retention;
            let closed = closed_sub_statuses();
            let horizon = now + days as i64 * DAY_MS;
            let rows = store
                .retention_due(&cutoffs(settings, horizon), &closed)
                .await?;
            println!("reference_id\tverification_id\tmerchant\tsub_status\trule\tdue");
            for r in &rows {
                let sub = SubStatus::parse(&r.sub_status).unwrap_or(SubStatus::INITIAL);
                let due = due_at(
                    settings,
                    r.sandbox,
                    sub,
                    r.created_at,
                    r.updated_at,
                    r.relationship_end.as_deref(),
                );
                let (rule, when) = match due {
                    Some((rule, at)) if at <= now => (rule.as_str(), "now".to_string()),
                    Some((rule, at)) => (rule.as_str(), ist_date(at).to_string()),
                    None => ("?", "?".to_string()),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{rule}\t{when}",
                    r.id, r.verification_id, r.merchant, r.sub_status
                );
            }
            println!(
                "{} case(s) due within {days} day(s); held cases are never listed",
                rows.len()
            );
        }
        RetentionCommand::Purge => {
            let pass = crate::workers::purge::purge_due(store, config, now).await?;
            println!(
                "purged {} case(s); deleted {} file(s); {} file(s) left to retry",
                pass.requests, pass.files, pass.files_failed
            );
        }
    }
    Ok(())
}

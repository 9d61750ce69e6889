//! Fills a vkyc database with requests quickly, for bench/expiry and bench/large: the
//! same rows `POST /vkyc` writes (through the store's own create: the request, its first
//! history row, its first webhook event and deliveries), many creates committed together
//! by the store's group commit, for a merchant that exists (the bootstrap one is 1).
//!
//!   cargo run --release --example fill_requests -- DATABASE_URL COUNT PREFIX \
//!       --master-key DATA_DIR/master.key \
//!       [--merchant 1] [--users 1000] [--expires-at-ms MS] [--in-flight 1024]
//!
//! The master key is the server's (the store checks that it is the database's).
//!
//! verification_ids are PREFIX_1 .. PREFIX_COUNT; users PREFIX_user_1 .. (created first).
//! Prints one line: `filled COUNT in SECONDS s (RATE/s)`.

use futures::StreamExt;
use rand::RngCore;
use std::time::Instant;
use vkyc::domain::status::Actor;
use vkyc::store::{NewRequest, NewUser, Store};

fn token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() >= 3,
        "usage: fill_requests DATABASE_URL COUNT PREFIX --master-key FILE [--merchant N] \
         [--users N] [--expires-at-ms MS] [--in-flight N]"
    );
    let (url, count, prefix) = (&args[0], args[1].parse::<u64>()?, args[2].clone());
    let mut merchant = 1i64;
    let mut users = 1000u64;
    let mut expires_at = vkyc::clock::now_ms() + 7 * 24 * 3_600_000;
    let mut in_flight = 1024usize;
    let mut key_file = None;
    let mut rest = args[3..].iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--merchant" => merchant = value.parse()?,
            "--users" => users = value.parse()?,
            "--expires-at-ms" => expires_at = value.parse()?,
            "--in-flight" => in_flight = value.parse()?,
            "--master-key" => key_file = Some(std::path::PathBuf::from(value)),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    let users = users.clamp(1, count.max(1));
    let key_file = key_file.ok_or_else(|| anyhow::anyhow!("--master-key FILE is needed"))?;
    let key = vkyc::secrets::MasterKey::from_hex(&std::fs::read_to_string(&key_file)?)?;
    let store = Store::open(url, &key).await?;
    let mut refs = Vec::with_capacity(users as usize);
    for i in 1..=users {
        let user_id = format!("{prefix}_user_{i}");
        let new = NewUser {
            user_id: user_id.clone(),
            phone: "9876543210".into(),
            email: None,
            name: None,
            address: None,
        };
        let user = match store.insert_user(merchant, &new).await? {
            Some(user) => user,
            None => store
                .user_by_user_id(merchant, &user_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("user {user_id} vanished"))?,
        };
        refs.push((user.id, user_id));
    }
    let started = Instant::now();
    let store_ref = &store;
    let refs = &refs;
    let prefix = &prefix;
    let mut created = 0u64;
    let mut outcomes = futures::stream::iter(1..=count)
        .map(|i| async move {
            let (user_ref, user_id) = &refs[(i % refs.len() as u64) as usize];
            let new = NewRequest {
                verification_id: format!("{prefix}_{i}"),
                user_ref: *user_ref,
                user_id: user_id.clone(),
                link_token: token(20),
                link_expires_at: expires_at,
                notification_types: None,
                user_template: None,
                agent_template: None,
                user_template_version: None,
                agent_template_version: None,
                aadhaar_details: None,
                security_questions: None,
                webhook_url: None,
            };
            store_ref
                .insert_request(merchant, &new, Actor::Merchant)
                .await
        })
        .buffer_unordered(in_flight.max(1));
    while let Some(outcome) = outcomes.next().await {
        if outcome.map_err(|e| anyhow::anyhow!("{e}"))?.is_some() {
            created += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "filled {created} in {secs:.1} s ({:.0}/s)",
        created as f64 / secs.max(1e-9)
    );
    store.close().await;
    Ok(())
}

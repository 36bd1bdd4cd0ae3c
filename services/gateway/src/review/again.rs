//! `altdata review-again`: the waiting queue resolved again with today's resolver. Held rows
//! keep the decision the resolver made when they arrived; after a catalogue, alias, rule or
//! resolver release, the queue would still hold rows the resolver now decides by itself, under
//! group keys an older resolver made. This pass, per group waiting:
//!
//! - **regroups** rows whose text now has another group key (a store's branch or a town cut
//!   short, [`altdata_resolver::Resolution::group`]), so a group is one shop again;
//! - **assigns** a group when every distinct text among its rows now resolves automatically to
//!   one and the same merchant. It is an ordinary assign ([`assign::assign_groups`]): the rows'
//!   spend moves exactly from the unattributed merchant to the brand, an alias is made, the
//!   audit trail names the actor, and the review tool's undo reverses it. A group whose texts
//!   resolve to different merchants, or not at all, waits for a person.
//!
//! Both are idempotent: a second pass with the same resolver changes nothing.

use super::assign::{self, Target};
use super::{Failure, MAX_DESCRIPTORS};
use altdata_resolver::Resolver;
use std::collections::{BTreeMap, BTreeSet};

/// What a pass found and (without `dry_run`) did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AgainReport {
    pub groups_examined: usize,
    /// Groups whose rows were put under another group key, and those rows.
    pub groups_regrouped: usize,
    pub rows_regrouped: u64,
    /// Groups assigned to the merchant their texts now resolve to.
    pub groups_assigned: usize,
    pub rows_assigned: u64,
    pub cents_assigned: i64,
    /// Groups whose texts resolve to more than one merchant: left for a person.
    pub groups_split: usize,
    /// Per merchant: the groups assigned to it, in order.
    pub assigned: BTreeMap<i64, Vec<String>>,
}

/// One distinct text among a group's pending rows.
struct Text {
    group: String,
    raw: String,
    mcc: String,
    rows: i64,
    cents: i64,
}

/// Resolves the waiting queue again; changes nothing with `dry_run`.
pub async fn resolve_again(
    client: &mut deadpool_postgres::Client,
    resolver: &Resolver,
    actor: &str,
    dry_run: bool,
) -> Result<AgainReport, Failure> {
    let texts = waiting_texts(client).await?;
    let (report, moves) = plan(&texts, resolver);
    if dry_run {
        return Ok(report);
    }
    regroup(client, &moves).await?;
    for (merchant_id, groups) in &report.assigned {
        for chunk in groups.chunks(MAX_DESCRIPTORS) {
            assign::assign_groups(client, chunk, &Target::Existing(*merchant_id), actor).await?;
        }
    }
    Ok(report)
}

/// One group key of today's resolver: the merchants its texts resolve to (`None`: not
/// automatically), and their rows and absolute cents.
#[derive(Default)]
struct Key {
    merchants: BTreeSet<Option<i64>>,
    rows: i64,
    cents: i64,
}

/// What today's resolver makes of the waiting texts: the report, and the texts to put under
/// another group key.
fn plan<'t>(texts: &'t [Text], resolver: &Resolver) -> (AgainReport, Vec<(&'t Text, String)>) {
    let mut keys: BTreeMap<String, Key> = BTreeMap::new();
    let mut moves: Vec<(&Text, String)> = Vec::new();
    for text in texts {
        let resolution = resolver.resolve(&text.raw, &text.mcc);
        let key = resolution.group();
        if key.is_empty() {
            // Nothing to key on: the rows stay where they wait, for a person.
            keys.entry(text.group.clone())
                .or_default()
                .merchants
                .insert(None);
            continue;
        }
        let entry = keys.entry(key.to_owned()).or_default();
        entry.merchants.insert(resolution.merchant_id());
        entry.rows += text.rows;
        entry.cents += text.cents;
        if key != text.group {
            moves.push((text, key.to_owned()));
        }
    }
    let mut report = AgainReport {
        groups_examined: texts
            .iter()
            .map(|t| &t.group)
            .collect::<BTreeSet<_>>()
            .len(),
        groups_regrouped: moves
            .iter()
            .map(|(t, _)| &t.group)
            .collect::<BTreeSet<_>>()
            .len(),
        rows_regrouped: moves.iter().map(|(t, _)| t.rows as u64).sum(),
        ..AgainReport::default()
    };
    for (group, key) in keys {
        let decided = key.merchants.iter().filter(|m| m.is_some()).count();
        match key.merchants.first() {
            Some(Some(merchant_id)) if key.merchants.len() == 1 => {
                report.groups_assigned += 1;
                report.rows_assigned += key.rows as u64;
                report.cents_assigned += key.cents;
                report.assigned.entry(*merchant_id).or_default().push(group);
            }
            _ if decided > 1 => report.groups_split += 1,
            _ => {}
        }
    }
    (report, moves)
}

/// The distinct (group, text, MCC) of the pending rows, with their rows and absolute cents.
async fn waiting_texts(client: &deadpool_postgres::Client) -> Result<Vec<Text>, Failure> {
    let rows = client
        .query(
            "SELECT normalized_descriptor, raw_descriptor, mcc, count(*),
                    coalesce(sum(abs(amount_cents)), 0)::bigint
             FROM unmapped_transactions WHERE status = 'pending'
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Text {
            group: row.get(0),
            raw: row.get(1),
            mcc: row.get(2),
            rows: row.get(3),
            cents: row.get(4),
        })
        .collect())
}

/// Puts pending rows under their new group keys, in one transaction under the review lock
/// (a reviewer's decision on the old key waits for it, then finds the rows gone from it).
async fn regroup(
    client: &mut deadpool_postgres::Client,
    moves: &[(&Text, String)],
) -> Result<(), Failure> {
    if moves.is_empty() {
        return Ok(());
    }
    let groups: Vec<&str> = moves.iter().map(|(t, _)| t.group.as_str()).collect();
    let raws: Vec<&str> = moves.iter().map(|(t, _)| t.raw.as_str()).collect();
    let mccs: Vec<&str> = moves.iter().map(|(t, _)| t.mcc.as_str()).collect();
    let keys: Vec<&str> = moves.iter().map(|(_, key)| key.as_str()).collect();
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&super::REVIEW_LOCK])
        .await?;
    transaction
        .execute(
            "UPDATE unmapped_transactions u SET normalized_descriptor = m.key
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS m(grp, raw, mcc, key)
             WHERE u.status = 'pending' AND u.normalized_descriptor = m.grp
               AND u.raw_descriptor = m.raw AND u.mcc = m.mcc",
            &[&groups, &raws, &mccs, &keys],
        )
        .await?;
    transaction.commit().await?;
    Ok(())
}

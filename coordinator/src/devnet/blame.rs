//! The devnet's check of identifiable abort through the whole stack (OPS-02), run when one
//! signer process was started as a deliberate cheater (`--dangerously-cheating-signer`): the
//! chain must record a `ReportBlame` naming it, the coordinator must serve evidence whose
//! digest is the recorded one, and every evidence envelope must carry the cheater's node
//! signature under the key an honest signer pins for it (checked with the signers' own
//! `signer_node::blame::verify_evidence`).

use std::time::{Duration, Instant};

use custody_proto::coordinator::v1 as pb;
use custody_proto::signer::v1::Blame;
use tokio_stream::StreamExt;

use super::flow::Env;
use super::DevnetError;
use crate::fleet::evidence_digest;

/// How long the blame may take to reach the chain after the flow.
const BLAME_LIMIT: Duration = Duration::from_secs(120);
/// Longest wait for the next block of the event stream while catching up.
const STREAM_WAIT: Duration = Duration::from_secs(10);

/// The first blame on chain that names `cheater`, with the height of its block.
async fn find_blame(
    env: &mut Env<'_>,
    cheater: u16,
) -> Result<Option<(u64, pb::SignerBlamed)>, DevnetError> {
    let height = env.api.status().await?.height;
    let mut stream = match env
        .api
        .client
        .stream_events(pb::StreamEventsRequest { from_height: 1 })
        .await
    {
        Ok(s) => s.into_inner(),
        Err(s) => return Err(env.api.err(s).into()),
    };
    loop {
        let block = match tokio::time::timeout(STREAM_WAIT, stream.next()).await {
            Ok(Some(Ok(block))) => block,
            Ok(Some(Err(s))) => return Err(env.api.err(s).into()),
            Ok(None) | Err(_) => return Ok(None),
        };
        for t in &block.transactions {
            if let Some(pb::transaction_event::Kind::SignerBlamed(b)) = &t.kind {
                if b.culprits.contains(&u32::from(cheater)) {
                    return Ok(Some((block.height, b.clone())));
                }
            }
        }
        if block.height >= height {
            return Ok(None);
        }
    }
}

/// Waits for the chain to blame `cheater` and checks the evidence; prints what it found.
pub async fn cheater_blamed(env: &mut Env<'_>, cheater: u16) -> Result<(), DevnetError> {
    let started = Instant::now();
    let (height, report) = loop {
        if let Some(found) = find_blame(env, cheater).await? {
            break found;
        }
        env.pause(started, BLAME_LIMIT, "a blame naming the cheating signer")
            .await?;
    };
    let flow = |what: String| DevnetError::Flow(format!("blame of signer {cheater}: {what}"));
    let blame = match env
        .api
        .client
        .get_blame(pb::GetBlameRequest {
            session_id: report.session_id.clone(),
        })
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) => return Err(env.api.err(s).into()),
    };
    if evidence_digest(&blame.evidence).as_slice() != report.evidence_digest.as_slice() {
        return Err(flow(
            "the evidence served does not hash to the recorded digest".into(),
        ));
    }
    // An honest signer's pinned keys judge the evidence.
    let honest = (1..=env.options.signers)
        .find(|i| *i != cheater)
        .ok_or_else(|| flow("no honest signer to judge the evidence".into()))?;
    let config_path = env
        .files
        .signer_configs
        .get(usize::from(honest - 1))
        .ok_or_else(|| flow(format!("no config of signer {honest}")))?;
    let config = signer_node::config::NodeConfig::load(config_path)
        .map_err(|e| flow(format!("signer {honest}'s config: {e}")))?;
    let session: [u8; 32] = report
        .session_id
        .as_slice()
        .try_into()
        .map_err(|_| flow("the session id is not 32 bytes".into()))?;
    let verified = signer_node::blame::verify_evidence(
        &Blame {
            culprits: report.culprits.clone(),
            reason: report.reason.clone(),
            evidence: blame.evidence,
        },
        &config.raw.fleet_id,
        &signer_node::envelope::SessionId(session),
        &signer_node::blame::pinned_keys(&config),
    )
    .map_err(|e| flow(format!("the evidence does not verify: {e}")))?;
    println!(
        "signer {cheater} blamed on chain in block {height} (session {}): {}",
        hex::encode(&report.session_id),
        report.reason
    );
    println!(
        "  evidence: {} envelope(s) signed with signer {cheater}'s node key as signer {honest} pins it; digest matches the chain's",
        verified.len()
    );
    Ok(())
}

//! `signer-node devnet`: a local fleet of real signer processes on loopback, driven end to
//! end by a coordinator-role client: t-of-m keygen (GJKR DKG + CGGMP24 aux info), one
//! presignature, and one authorized signature, verified here with k256 (and its public key
//! recovered from the recovery id, as Ethereum does); then every signer killed and restarted,
//! a second signature, a proactive refresh of the key (same address, epoch 1) and a third
//! signature at the new epoch.
//!
//! The fleet is a devnet and says so: a fresh PKI from [`crate::pki::write_devnet`], each
//! signer's shares in its own sealed sled store (`signer-node init`, file keystore whose
//! passphrase is a random file beside the data), and by default the committed **public** fixture safe primes (`[devnet] fixture_primes`, build
//! feature `devnet-fixtures`) so that aux info does not wait for prime generation;
//! `--real-primes` generates them instead (about a minute more on two cores).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use custody_proto::signer::v1::{
    session_status_response::Outcome, signer_control_client::SignerControlClient, Authorization,
    AuthorizerSignature, DerivationPath as WirePath, FillPresignPoolRequest, KeyInfo, SessionState,
    SessionStatusRequest, SessionStatusResponse, SignRequest, StartKeygenRequest,
    StartRefreshRequest,
};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use k256::elliptic_curve::sec1::FromEncodedPoint;
use k256::{AffinePoint, EncodedPoint, ProjectivePoint};
use mpc_core::hd::{ChainCode, DerivationPath, ExtendedPublicKey};
use sha2::{Digest, Sha256};
use sha3::Keccak256;
use tonic::transport::Channel;

use crate::config::{FleetId, NodeConfig};
use crate::gate::{authorization_signing_bytes, DigestRule, OrderInput, SigningOrder};
use crate::node_key::NodeKey;
use crate::pki::{write_devnet, DevnetSpec};
use crate::tls::TlsMaterial;

/// What to start.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Number of signers m.
    pub signers: u16,
    /// Signers needed to sign, t.
    pub threshold: u16,
    /// Directory for PKI, configs and logs (created; must not exist or be empty).
    pub dir: PathBuf,
    /// Signer i listens on `base_port + i − 1`.
    pub base_port: u16,
    /// Generate safe primes instead of using the public fixtures.
    pub real_primes: bool,
    /// Keep the fleet running after the demonstration until Ctrl-C.
    pub keep_running: bool,
}

/// The signer processes; killed when dropped, so an error never leaves them behind.
struct Fleet {
    exe: PathBuf,
    configs: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Fleet {
    /// Starts `signer-node run` for every config (logs appended to signer-N/node.log).
    fn start(&mut self) -> anyhow::Result<()> {
        for (i, path) in self.configs.iter().enumerate() {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path.with_file_name("node.log"))?;
            let child = Command::new(&self.exe)
                .args(["run", "--config"])
                .arg(path)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting signer {}", i + 1))?;
            self.children.push(child);
        }
        Ok(())
    }

    /// Kills every signer (SIGKILL: no orderly shutdown) and waits for them.
    fn kill_all(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const PATH: [u32; 5] = [44, 60, 0, 0, 0];

fn random_id() -> Vec<u8> {
    let mut id = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
    id.to_vec()
}

/// Runs the demonstration; prints progress and the results on stdout.
pub fn run(options: DevnetOptions, exe: &Path) -> anyhow::Result<()> {
    let (m, t) = (options.signers, options.threshold);
    if m == 0 || t == 0 || t > m {
        bail!("need 1 ≤ threshold ≤ signers, got {t}-of-{m}");
    }
    let spec = DevnetSpec {
        fleet_id: FleetId::new("devnet").map_err(anyhow::Error::msg)?,
        signers: m,
        coordinators: 1,
        clients: Vec::new(),
        authorizers: 2,
        quorum: 2,
        host: "127.0.0.1".into(),
        ports: (0..m).map(|i| options.base_port + i).collect(),
        out: options.dir.clone(),
    };
    let layout = write_devnet(&spec).context("writing the devnet PKI and configs")?;
    println!(
        "devnet: {m} signers, threshold {t}, PKI and configs in {}",
        options.dir.display()
    );
    for path in &layout.signer_configs {
        let mut raw =
            NodeConfig::parse(&std::fs::read_to_string(path)?).map_err(anyhow::Error::msg)?;
        raw.devnet.fixture_primes = !options.real_primes;
        std::fs::write(path, toml::to_string(&raw)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if !options.real_primes {
        println!("devnet: aux info uses the PUBLIC fixture safe primes (devnet only; --real-primes generates them)");
    }

    let mut fleet = Fleet {
        exe: exe.to_owned(),
        configs: layout.signer_configs.clone(),
        children: Vec::new(),
    };
    for (i, path) in layout.signer_configs.iter().enumerate() {
        // keystore (Argon2id under the devnet passphrase file) and sealed store, once
        let init = Command::new(exe)
            .args(["init", "--config"])
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("initialising signer {}", i + 1))?;
        if !init.status.success() {
            bail!(
                "signer {} init failed: {}",
                i + 1,
                String::from_utf8_lossy(&init.stderr)
            );
        }
    }
    println!("devnet: keystores and sealed stores created (signer-N/data)");
    fleet.start()?;
    println!(
        "devnet: started {m} signer processes (logs: signer-N/node.log), mTLS on ports {}..{}",
        options.base_port,
        options.base_port + m - 1
    );

    let coordinator_dir = layout
        .coordinator_dirs
        .first()
        .context("the devnet has a coordinator certificate")?;
    let material = TlsMaterial::from_pem(
        std::fs::read(&layout.ca_cert)?,
        std::fs::read(coordinator_dir.join("cert.pem"))?,
        zeroize::Zeroizing::new(std::fs::read(coordinator_dir.join("key.pem"))?),
    )?;
    let authorizers = layout
        .authorizer_keys
        .iter()
        .map(|p| NodeKey::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(drive(&options, &material, &authorizers, &mut fleet))?;
    if options.keep_running {
        println!("devnet: running; Ctrl-C stops the signers");
        runtime.block_on(tokio::signal::ctrl_c())?;
    }
    drop(fleet);
    Ok(())
}

async fn drive(
    options: &DevnetOptions,
    material: &TlsMaterial,
    authorizers: &[NodeKey],
    fleet: &mut Fleet,
) -> anyhow::Result<()> {
    let (m, t) = (options.signers, options.threshold);
    let mut controls = Vec::new();
    for i in 0..m {
        let url = format!("https://127.0.0.1:{}", options.base_port + i);
        controls.push(SignerControlClient::new(material.channel(&url)?));
    }
    wait_until_serving(&mut controls, fleet).await?;

    // keygen
    let started = Instant::now();
    let key_id = random_id();
    let keygen = random_id();
    for c in controls.iter_mut() {
        c.start_keygen(StartKeygenRequest {
            session_id: keygen.clone(),
            key_id: key_id.clone(),
            threshold: u32::from(t),
            participants: (1..=u32::from(m)).collect(),
        })
        .await?;
    }
    println!("keygen: GJKR DKG + CGGMP24 aux info among {m} signers ...");
    let mut key: Option<KeyInfo> = None;
    for (i, c) in controls.iter_mut().enumerate() {
        let status = wait_end(c, &keygen, Duration::from_secs(600)).await?;
        let Some(Outcome::Key(info)) = status.outcome else {
            bail!("signer {} ended keygen without a key: {status:?}", i + 1);
        };
        match &key {
            None => key = Some(info),
            Some(k) if k.public_key == info.public_key && k.chain_code == info.chain_code => {}
            Some(_) => bail!("signer {} reports another public key", i + 1),
        }
    }
    let key = key.context("no signer")?;
    println!(
        "keygen: done in {:.1} s; public key {}",
        started.elapsed().as_secs_f64(),
        hex::encode(&key.public_key)
    );

    // the child key that signs, derived from public data only
    let point = AffinePoint::from_encoded_point(
        &EncodedPoint::from_bytes(&key.public_key)
            .map_err(|e| anyhow::anyhow!("public key encoding: {e}"))?,
    );
    let point: Option<AffinePoint> = point.into();
    let point = point.context("public key is not a curve point")?;
    let chain_code: [u8; 32] = key.chain_code.as_slice().try_into()?;
    let master =
        ExtendedPublicKey::new_master(ProjectivePoint::from(point), ChainCode(chain_code))?;
    let path = DerivationPath::from_indices(&PATH)?;
    let (child, _) = master.derive_path(&path)?;
    let child_key = VerifyingKey::from_affine(child.public_key().to_affine())?;
    println!(
        "address: {} (Ethereum, child key m/44/60/0/0/0, non-hardened)",
        ethereum_address(&child_key)
    );

    let rounds = SignContext {
        key_id: key_id.clone(),
        epoch: 0,
        threshold: t,
        authorizers,
        child_key,
    };
    let first = rounds
        .presign_and_sign(&mut controls, "lock-out order #1")
        .await?;

    // restart every signer the hard way: keys stay, the used presignature stays used
    fleet.kill_all();
    println!("restart: all {m} signers killed (SIGKILL) and started again");
    fleet.start()?;
    wait_until_serving(&mut controls, fleet).await?;
    for (i, c) in controls.iter_mut().enumerate() {
        let keys = c
            .list_keys(custody_proto::signer::v1::ListKeysRequest {})
            .await?
            .into_inner()
            .keys;
        if !keys
            .iter()
            .any(|k| k.key_id == key_id && k.public_key == key.public_key)
        {
            bail!("signer {} lost the key across the restart", i + 1);
        }
    }
    println!("restart: every signer still holds the key (sealed store reopened)");
    let reuse = controls[0]
        .sign(rounds.sign_request(
            random_id(),
            &first.presignature_id,
            first.authorization.clone(),
        ))
        .await;
    match reuse {
        Err(status) if status.code() == tonic::Code::FailedPrecondition => println!(
            "restart: the consumed presignature stays consumed ({})",
            status.message()
        ),
        other => bail!("a consumed presignature was accepted after the restart: {other:?}"),
    }
    rounds
        .presign_and_sign(&mut controls, "lock-out order #2")
        .await?;

    // proactive refresh: new shares and aux info at epoch 1, the same key and address
    let started = Instant::now();
    let refresh = random_id();
    for c in controls.iter_mut() {
        c.start_refresh(StartRefreshRequest {
            session_id: refresh.clone(),
            key_id: key_id.clone(),
            epoch: 0,
        })
        .await?;
    }
    println!("refresh: zero-sharing DKG + fresh aux info among {m} signers ...");
    for (i, c) in controls.iter_mut().enumerate() {
        let status = wait_end(c, &refresh, Duration::from_secs(600)).await?;
        let Some(Outcome::Key(info)) = status.outcome else {
            bail!(
                "signer {} ended the refresh without a key: {status:?}",
                i + 1
            );
        };
        if info.public_key != key.public_key || info.chain_code != key.chain_code {
            bail!("signer {} reports another key after the refresh", i + 1);
        }
        if info.epoch != 1 {
            bail!(
                "signer {} is at epoch {} after the refresh",
                i + 1,
                info.epoch
            );
        }
    }
    println!(
        "refresh: done in {:.1} s; epoch 1, same public key, address {}",
        started.elapsed().as_secs_f64(),
        ethereum_address(&rounds.child_key)
    );
    SignContext { epoch: 1, ..rounds }
        .presign_and_sign(&mut controls, "lock-out order #3 (epoch 1)")
        .await?;
    Ok(())
}

/// What one presign-and-sign round used, for the restart check.
struct Signed {
    presignature_id: Vec<u8>,
    authorization: Authorization,
}

/// What every signing round of the demonstration shares: the key, the signers 1..=t, the
/// devnet authorizers and the child key that must verify.
struct SignContext<'a> {
    key_id: Vec<u8>,
    /// The key's epoch (presignatures are bound to it).
    epoch: u64,
    threshold: u16,
    authorizers: &'a [NodeKey],
    child_key: VerifyingKey,
}

impl SignContext<'_> {
    /// A `Sign` of input 0 of `authorization` by signers 1..=t with a pooled presignature.
    fn sign_request(
        &self,
        session_id: Vec<u8>,
        presignature_id: &[u8],
        authorization: Authorization,
    ) -> SignRequest {
        SignRequest {
            session_id,
            key_id: self.key_id.clone(),
            path: Some(WirePath {
                indices: PATH.to_vec(),
            }),
            signers: (1..=u32::from(self.threshold)).collect(),
            authorization: Some(authorization),
            input_index: 0,
            presignature_id: presignature_id.to_vec(),
        }
    }

    /// One presignature on signers 1..=t, then an order authorized by the devnet authorizers
    /// signed with it and verified here.
    async fn presign_and_sign(
        &self,
        controls: &mut [SignerControlClient<Channel>],
        label: &str,
    ) -> anyhow::Result<Signed> {
        let (t, key_id, authorizers, child_key) = (
            self.threshold,
            self.key_id.clone(),
            self.authorizers,
            &self.child_key,
        );
        // one presignature on signers 1..=t
        let signers: Vec<u32> = (1..=u32::from(t)).collect();
        let started = Instant::now();
        let presign = random_id();
        for c in controls[..usize::from(t)].iter_mut() {
            c.fill_presign_pool(FillPresignPoolRequest {
                session_id: presign.clone(),
                key_id: key_id.clone(),
                epoch: self.epoch,
                path: Some(WirePath {
                    indices: PATH.to_vec(),
                }),
                signers: signers.clone(),
            })
            .await?;
        }
        for c in controls[..usize::from(t)].iter_mut() {
            let status = wait_end(c, &presign, Duration::from_secs(300)).await?;
            if status.state != SessionState::Completed as i32 {
                bail!("presigning did not complete: {status:?}");
            }
        }
        println!(
            "presign: signers {signers:?}, {:.1} s",
            started.elapsed().as_secs_f64()
        );

        // an order the two devnet authorizers sign; the signers hash its input themselves
        let message = format!("custody devnet: {label}").into_bytes();
        let not_after = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 600;
        let order = SigningOrder {
            fleet_id: "devnet".into(),
            key_id: key_id.as_slice().try_into()?,
            not_after,
            inputs: vec![OrderInput {
                path: PATH.to_vec(),
                rule: DigestRule::Keccak256,
                message: message.clone(),
            }],
        }
        .encode()?;
        let authorization = Authorization {
            signatures: authorizers
                .iter()
                .map(|k| AuthorizerSignature {
                    public_key: k.verifying_key().to_bytes().to_vec(),
                    signature: k
                        .sign(&authorization_signing_bytes(&order))
                        .to_bytes()
                        .to_vec(),
                })
                .collect(),
            order,
            chain: None,
        };
        let started = Instant::now();
        let sign = random_id();
        for c in controls[..usize::from(t)].iter_mut() {
            c.sign(self.sign_request(sign.clone(), &presign, authorization.clone()))
                .await?;
        }
        let mut signature = None;
        for c in controls[..usize::from(t)].iter_mut() {
            let status = wait_end(c, &sign, Duration::from_secs(60)).await?;
            match status.outcome {
                Some(Outcome::Signature(s)) => signature = Some(s),
                _ => bail!("signing did not complete: {status:?}"),
            }
        }
        let signature = signature.context("no signer")?;
        let elapsed = started.elapsed();

        // verify here, independently of the signers
        let digest: [u8; 32] = Keccak256::digest(&message).into();
        let sig = Signature::from_slice(&signature.r_s)?;
        child_key
            .verify_prehash(&digest, &sig)
            .context("the signature does not verify")?;
        let recovery = RecoveryId::from_byte(u8::try_from(signature.recovery_id)?)
            .context("recovery id out of range")?;
        let recovered = VerifyingKey::recover_from_prehash(&digest, &sig, recovery)?;
        if &recovered != child_key {
            bail!("the recovery id does not recover the child key");
        }
        println!(
            "sign: keccak256({:?}) = {}",
            String::from_utf8_lossy(&message),
            hex::encode(digest)
        );
        println!(
            "sign: signature r||s = {}, v = {} ({:.0} ms, verified with k256; recovers {})",
            hex::encode(&signature.r_s),
            signature.recovery_id,
            elapsed.as_secs_f64() * 1e3,
            ethereum_address(&recovered)
        );
        println!(
            "order hash (authorized by 2 of 2 devnet authorizers): {}",
            hex::encode(Sha256::digest(&authorization.order))
        );

        Ok(Signed {
            presignature_id: presign,
            authorization,
        })
    }
}

/// Ethereum address: the last 20 bytes of Keccak-256 of the uncompressed public key (without
/// its 0x04 prefix), with the EIP-55 mixed-case checksum.
pub fn ethereum_address(key: &VerifyingKey) -> String {
    let uncompressed = key.to_encoded_point(false);
    let hash = Keccak256::digest(&uncompressed.as_bytes()[1..]);
    let lower = hex::encode(&hash[12..]);
    let check = Keccak256::digest(lower.as_bytes());
    let mut out = String::from("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (check[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

async fn wait_until_serving(
    controls: &mut [SignerControlClient<Channel>],
    fleet: &mut Fleet,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, c) in controls.iter_mut().enumerate() {
        loop {
            if let Some(status) = fleet.children[i].try_wait()? {
                bail!(
                    "signer {} exited at start ({status}); see its node.log",
                    i + 1
                );
            }
            match c
                .list_keys(custody_proto::signer::v1::ListKeysRequest {})
                .await
            {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => bail!("signer {} does not answer: {e}", i + 1),
            }
        }
    }
    Ok(())
}

async fn wait_end(
    control: &mut SignerControlClient<Channel>,
    session: &[u8],
    limit: Duration,
) -> anyhow::Result<SessionStatusResponse> {
    let start = Instant::now();
    loop {
        let status = control
            .session_status(SessionStatusRequest {
                session_id: session.to_vec(),
            })
            .await?
            .into_inner();
        let state = SessionState::try_from(status.state)?;
        if !matches!(state, SessionState::Pending | SessionState::Running) {
            return Ok(status);
        }
        if start.elapsed() > limit {
            bail!("session still {state:?} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ethereum_address_matches_a_known_key() {
        // private key 1: the generator's address (widely published)
        let key = VerifyingKey::from_affine(ProjectivePoint::GENERATOR.to_affine()).unwrap();
        assert_eq!(
            ethereum_address(&key),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
    }
}

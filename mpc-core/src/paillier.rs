//! Paillier-Blum encryption on `num-bigint` (CGGMP24 §2.2 and Fig. 7's key requirements).
//!
//! N = p·q with p ≡ q ≡ 3 (mod 4) safe primes, N ≥ 3072 bits (PARAM-01). Encryption uses
//! g = N + 1, so enc(m; ρ) = (1 + m·N)·ρ^N mod N². The key owner decrypts and does every other
//! exponentiation modulo N² with the CRT over p² and q² (DFNS spec §2.2), reducing exponents
//! modulo φ(p²) and φ(q²). Every ciphertext and every randomness received from outside is
//! validated as a unit of its group before use (ENC / PRE-05): zero, N², multiples of p or q
//! and values out of range are rejected with an error, never a panic.

use alloc::sync::Arc;
use core::fmt;

use num_bigint::{BigInt, BigUint, Sign};
use num_integer::Integer;
use num_traits::{One, Zero};
use rand_core::CryptoRngCore;

use crate::arith::{crt_combine, is_unit_mod, mod_inverse, random_unit, SecretInt, SecretUint};
use crate::monty::Montgomery;
use crate::paillier_nonce::{CrtModuli, OwnerNonceTables, PublicNonceTables};
use crate::params::{MAX_MODULUS_BITS, MIN_MODULUS_BITS};

/// Why a Paillier key, ciphertext or randomness was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaillierError {
    /// N has fewer than [`MIN_MODULUS_BITS`] bits (PARAM-01).
    #[error("Paillier modulus has {bits} bits, at least {MIN_MODULUS_BITS} are required")]
    ModulusTooSmall {
        /// Bits of the refused modulus.
        bits: u64,
    },
    /// N has more than [`MAX_MODULUS_BITS`] bits.
    #[error("Paillier modulus has {bits} bits, at most {MAX_MODULUS_BITS} are accepted")]
    ModulusTooLarge {
        /// Bits of the refused modulus.
        bits: u64,
    },
    /// N is even.
    #[error("Paillier modulus is even")]
    EvenModulus,
    /// A ciphertext is not a unit of Z*_{N²} (zero, ≥ N², or shares a factor with N).
    #[error("ciphertext is not a unit modulo N²")]
    CiphertextNotUnit,
    /// A randomness value is not a unit of Z*_N.
    #[error("randomness is not a unit modulo N")]
    NonceNotUnit,
    /// An encoded ciphertext does not have the fixed length of an element of Z_{N²}.
    #[error("encoded ciphertext is {got} bytes, expected {expected}")]
    CiphertextLength {
        /// Length found.
        got: usize,
        /// Length of N² in bytes.
        expected: usize,
    },
    /// The primes do not make a Paillier-Blum key (equal, not 3 mod 4, or wrong size).
    #[error("primes do not form a Paillier-Blum modulus: {0}")]
    BadPrimes(&'static str),
}

/// A Paillier public key N (with N² cached).
///
/// An *owner view* ([`PaillierSecretKey::owner_public_key`]) also carries the owner's CRT
/// material and uses it for every exponentiation; equality compares N only.
#[derive(Clone)]
pub struct PaillierPublicKey {
    n: BigUint,
    nn: BigUint,
    /// Montgomery constants of N², for encryption and homomorphic scalar multiplication.
    mont_nn: Montgomery,
    owner: Option<Arc<PaillierCrt>>,
    /// Fixed-base tables for fresh randomness under this (someone else's) key, when built
    /// with [`PaillierPublicKey::with_nonce_tables`].
    nonce_tables: Option<Arc<PublicNonceTables>>,
}

impl PartialEq for PaillierPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}

impl Eq for PaillierPublicKey {}

impl fmt::Debug for PaillierPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = if self.owner.is_some() {
            ", owner CRT"
        } else {
            ""
        };
        let tables = if self.nonce_tables.is_some() {
            ", nonce tables"
        } else {
            ""
        };
        write!(
            f,
            "PaillierPublicKey({} bits{owner}{tables})",
            self.n.bits()
        )
    }
}

/// A Paillier ciphertext, known to be a unit of Z*_{N²} for the key it was checked against.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Ciphertext(BigUint);

impl Ciphertext {
    /// The ciphertext as an integer in [1, N²).
    pub fn as_uint(&self) -> &BigUint {
        &self.0
    }
}

/// Paillier encryption randomness ρ ∈ Z*_N. Secret to the encryptor.
pub struct Nonce(SecretUint);

impl Nonce {
    /// Exposes ρ (for proofs that mask it).
    pub fn expose(&self) -> &BigUint {
        self.0.expose()
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Nonce(<redacted>)")
    }
}

/// Fresh encryption randomness ρ ∈ Z*_N together with ρ^N mod N², for the key that sampled it
/// ([`PaillierPublicKey::fresh_nonce`], [`PaillierSecretKey::fresh_nonce`]). Using it with
/// another key gives a wrong ciphertext. Secret to the encryptor.
pub struct FreshNonce {
    rho: Nonce,
    rho_pow_n: SecretUint,
}

impl FreshNonce {
    /// Exposes ρ (for proofs that mask it).
    pub fn expose(&self) -> &BigUint {
        self.rho.expose()
    }

    /// The nonce ρ alone.
    pub fn into_nonce(self) -> Nonce {
        self.rho
    }
}

impl fmt::Debug for FreshNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FreshNonce(<redacted>)")
    }
}

impl PaillierPublicKey {
    /// Validates N: odd, at least [`MIN_MODULUS_BITS`] (PARAM-01, checked before any other
    /// work) and at most [`MAX_MODULUS_BITS`] bits. That N is a product of two safe primes
    /// is what Πmod (Fig. 12) and Πfac (Fig. 26) prove; this check only bounds cost and size.
    pub fn from_modulus(n: BigUint) -> Result<Self, PaillierError> {
        let bits = n.bits();
        if bits < u64::from(MIN_MODULUS_BITS) {
            return Err(PaillierError::ModulusTooSmall { bits });
        }
        if bits > u64::from(MAX_MODULUS_BITS) {
            return Err(PaillierError::ModulusTooLarge { bits });
        }
        if n.is_even() {
            return Err(PaillierError::EvenModulus);
        }
        let nn = &n * &n;
        let mont_nn = Montgomery::new(&nn).ok_or(PaillierError::EvenModulus)?;
        Ok(Self {
            n,
            nn,
            mont_nn,
            owner: None,
            nonce_tables: None,
        })
    }

    /// The same key with fixed-base tables for fresh encryption randomness
    /// ([`crate::paillier_nonce`]): each later [`Self::fresh_nonce`] costs about a third of
    /// the exponentiation ρ^N mod N² it replaces. Building them costs about two such
    /// exponentiations, so build them once per peer key and epoch (the aux info does). A
    /// modulus without usable bases (a perfect square) stays without tables.
    pub fn with_nonce_tables(&self) -> Self {
        if self.owner.is_some() || self.nonce_tables.is_some() {
            return self.clone();
        }
        Self {
            nonce_tables: PublicNonceTables::new(&self.n, &self.nn, &self.mont_nn).map(Arc::new),
            ..self.clone()
        }
    }

    /// Whether [`Self::fresh_nonce`] runs from tables (an owner view or a key with tables).
    pub fn has_fast_nonces(&self) -> bool {
        self.owner.as_deref().is_some_and(|c| c.nonce.is_some()) || self.nonce_tables.is_some()
    }

    /// A fresh uniform ρ ∈ Z*_N with ρ^N mod N²: from the owner's tables for an owner view,
    /// from this key's tables when built, else by a plain exponentiation.
    pub fn fresh_nonce(&self, rng: &mut impl CryptoRngCore) -> FreshNonce {
        if let Some(crt) = self.owner.as_deref() {
            return crt.fresh_nonce(rng, &self.n, &self.nn);
        }
        let (rho, rho_pow_n) = match self.nonce_tables.as_deref() {
            Some(tables) => tables.sample(rng, &self.n, &self.nn),
            None => {
                let rho = SecretUint::new(random_unit(rng, &self.n));
                let pow = SecretUint::new(self.mont_nn.pow(rho.expose(), &self.n));
                (rho, pow)
            }
        };
        FreshNonce {
            rho: Nonce(rho),
            rho_pow_n,
        }
    }

    /// enc(m; ρ) = (1 + m·N)·ρ^N mod N² for randomness from [`Self::fresh_nonce`] of this key.
    pub fn encrypt_fresh(&self, m: &BigInt, nonce: &FreshNonce) -> Ciphertext {
        Ciphertext(self.g_pow(m) * nonce.rho_pow_n.expose() % &self.nn)
    }

    /// The same key without the owner's CRT material (what may be sent or stored).
    pub fn plain(&self) -> Self {
        Self {
            owner: None,
            ..self.clone()
        }
    }

    /// Whether this is an owner view carrying the CRT secret.
    pub fn is_owner_view(&self) -> bool {
        self.owner.is_some()
    }

    /// base^exp mod N² for a signed exponent; `None` if exp < 0 and base is not a unit. An
    /// owner view uses the CRT when base is a unit of Z*_{N²}.
    pub fn pow_n2(&self, base: &BigUint, exp: &BigInt) -> Option<BigUint> {
        if let Some(crt) = self.owner.as_deref() {
            if is_unit_mod(base, &self.n) {
                return Some(crt.pow_mod_n2(base, exp));
            }
        }
        match exp.sign() {
            Sign::Minus => {
                let inv = mod_inverse(base, &self.nn)?;
                Some(self.mont_nn.pow(&inv, exp.magnitude()))
            }
            _ => Some(self.mont_nn.pow(base, exp.magnitude())),
        }
    }

    /// ρ^N mod N² (CRT for an owner view).
    fn nonce_pow_n(&self, rho: &BigUint) -> BigUint {
        match self.owner.as_deref() {
            Some(crt) => crt.nonce_pow_n(rho),
            None => self.mont_nn.pow(rho, &self.n),
        }
    }

    /// N.
    pub fn n(&self) -> &BigUint {
        &self.n
    }

    /// N².
    pub fn n_squared(&self) -> &BigUint {
        &self.nn
    }

    /// Accepts `c` as a ciphertext only if it is a unit of Z*_{N²} (PRE-05).
    pub fn ciphertext(&self, c: BigUint) -> Result<Ciphertext, PaillierError> {
        // gcd(c, N²) = 1 ⟺ gcd(c, N) = 1; the gcd with N is half the size.
        if c.is_zero() || c >= self.nn || !c.gcd(&self.n).is_one() {
            return Err(PaillierError::CiphertextNotUnit);
        }
        Ok(Ciphertext(c))
    }

    /// Length in bytes of the fixed-width encoding of a ciphertext (the byte length of N²).
    pub fn ciphertext_len(&self) -> usize {
        (self.nn.bits() as usize).div_ceil(8)
    }

    /// Decodes a ciphertext from its fixed-width big-endian encoding (DESIGN §7) and validates
    /// it as a unit of Z*_{N²}. Any other length, zero, N² or more, or a multiple of a factor
    /// of N is refused.
    pub fn ciphertext_from_bytes(&self, bytes: &[u8]) -> Result<Ciphertext, PaillierError> {
        let expected = self.ciphertext_len();
        if bytes.len() != expected {
            return Err(PaillierError::CiphertextLength {
                got: bytes.len(),
                expected,
            });
        }
        self.ciphertext(BigUint::from_bytes_be(bytes))
    }

    /// Fixed-width big-endian encoding of a ciphertext under this key.
    pub fn ciphertext_to_bytes(&self, c: &Ciphertext) -> alloc::vec::Vec<u8> {
        let len = self.ciphertext_len();
        let raw = c.0.to_bytes_be();
        let mut out = alloc::vec![0u8; len.saturating_sub(raw.len())];
        out.extend_from_slice(&raw);
        out
    }

    /// Accepts `r` as randomness only if it is a unit of Z*_N.
    pub fn check_nonce(&self, r: &BigUint) -> Result<(), PaillierError> {
        if is_unit_mod(r, &self.n) {
            Ok(())
        } else {
            Err(PaillierError::NonceNotUnit)
        }
    }

    /// A fresh random nonce ρ ← Z*_N.
    pub fn random_nonce(&self, rng: &mut impl CryptoRngCore) -> Nonce {
        Nonce(SecretUint::new(random_unit(rng, &self.n)))
    }

    /// (1 + m·N) mod N² for any integer m (m is taken modulo N).
    fn g_pow(&self, m: &BigInt) -> BigUint {
        let m_mod_n = m.mod_floor(&BigInt::from(self.n.clone()));
        let (_, m_mod_n) = m_mod_n.into_parts();
        (BigUint::one() + m_mod_n * &self.n) % &self.nn
    }

    /// enc(m; ρ) = (1 + m·N)·ρ^N mod N², for a validated ρ ∈ Z*_N.
    pub fn encrypt_with_nonce(
        &self,
        m: &BigInt,
        rho: &BigUint,
    ) -> Result<Ciphertext, PaillierError> {
        self.check_nonce(rho)?;
        let r_n = self.nonce_pow_n(rho);
        Ok(Ciphertext(self.g_pow(m) * r_n % &self.nn))
    }

    /// enc(m) with fresh randomness ([`Self::fresh_nonce`]); returns the ciphertext and its
    /// nonce.
    pub fn encrypt(&self, rng: &mut impl CryptoRngCore, m: &BigInt) -> (Ciphertext, Nonce) {
        let nonce = self.fresh_nonce(rng);
        (self.encrypt_fresh(m, &nonce), nonce.into_nonce())
    }

    /// Homomorphic addition a ⊕ b = a·b mod N².
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Ciphertext {
        Ciphertext(a.0.clone() * &b.0 % &self.nn)
    }

    /// Homomorphic scalar multiplication k ⊙ c = c^k mod N²; a negative k uses c^{-1}.
    pub fn mul_plain(&self, c: &Ciphertext, k: &BigInt) -> Ciphertext {
        // c is a unit (checked when it became a Ciphertext), so pow_n2 cannot fail; fall back
        // to c itself only if that invariant broke.
        Ciphertext(self.pow_n2(&c.0, k).unwrap_or_else(|| c.0.clone()))
    }

    /// Homomorphic negation: an encryption of −m from an encryption of m.
    pub fn negate(&self, c: &Ciphertext) -> Ciphertext {
        Ciphertext(mod_inverse(&c.0, &self.nn).unwrap_or_else(|| c.0.clone()))
    }
}

/// The owner's CRT material of a Paillier-Blum key: the primes p, q and the constants derived
/// from them. Shared (read-only) by the secret key and by owner views of the public key.
struct PaillierCrt {
    p: SecretUint,
    q: SecretUint,
    pp: SecretUint,
    qq: SecretUint,
    /// φ(N) = (p − 1)(q − 1).
    phi: SecretUint,
    /// p(p − 1) = φ(p²), q(q − 1) = φ(q²): exponent moduli for CRT exponentiation mod N².
    phi_pp: SecretInt,
    phi_qq: SecretInt,
    /// (p²)^{-1} mod q² and p^{-1} mod q for Garner recombination.
    pp_inv_mod_qq: SecretUint,
    p_inv_mod_q: SecretUint,
    /// h_p = L_p((1+N)^{p−1} mod p²)^{-1} mod p, and h_q likewise (decryption constants).
    hp: SecretUint,
    hq: SecretUint,
    /// N^{-1} mod φ(N): takes N-th roots (randomness recovery).
    n_inv_mod_phi: SecretUint,
    /// q mod (p − 1) and p mod (q − 1): exponents for ρ^N mod p², q² (see `nonce_pow_n`).
    q_mod_pm1: SecretUint,
    p_mod_qm1: SecretUint,
    /// Montgomery constants of p, q, p², q² (secret; wiped on drop).
    mont_p: Montgomery,
    mont_q: Montgomery,
    mont_pp: Montgomery,
    mont_qq: Montgomery,
    /// Fixed-base tables for fresh randomness ([`crate::paillier_nonce`]); `None` only if the
    /// hashed bases are degenerate modulo a prime (probability about 2^-1500).
    nonce: Option<OwnerNonceTables>,
}

impl PaillierCrt {
    fn new(p: SecretUint, q: SecretUint, n: &BigUint) -> Result<Self, PaillierError> {
        let (pe, qe) = (p.expose(), q.expose());
        let pp = pe * pe;
        let qq = qe * qe;
        let pm1 = pe - 1u32;
        let qm1 = qe - 1u32;
        let phi = &pm1 * &qm1;
        let phi_pp = pe * &pm1;
        let phi_qq = qe * &qm1;
        let pp_inv_mod_qq =
            mod_inverse(&pp, &qq).ok_or(PaillierError::BadPrimes("p and q not coprime"))?;
        let p_inv_mod_q =
            mod_inverse(pe, qe).ok_or(PaillierError::BadPrimes("p and q not coprime"))?;
        let g = n + 1u32;
        let lp = (g.modpow(&pm1, &pp) - 1u32) / pe;
        let lq = (g.modpow(&qm1, &qq) - 1u32) / qe;
        let hp =
            mod_inverse(&lp, pe).ok_or(PaillierError::BadPrimes("decryption constant mod p"))?;
        let hq =
            mod_inverse(&lq, qe).ok_or(PaillierError::BadPrimes("decryption constant mod q"))?;
        let n_inv_mod_phi =
            mod_inverse(n, &phi).ok_or(PaillierError::BadPrimes("gcd(N, φ(N)) ≠ 1"))?;
        let q_mod_pm1 = qe % &pm1;
        let p_mod_qm1 = pe % &qm1;
        let mont = |m: &BigUint| Montgomery::new(m).ok_or(PaillierError::BadPrimes("even prime"));
        let (mont_p, mont_q, mont_pp, mont_qq) = (mont(pe)?, mont(qe)?, mont(&pp)?, mont(&qq)?);
        let mut crt = Self {
            p,
            q,
            pp: SecretUint::new(pp),
            qq: SecretUint::new(qq),
            phi: SecretUint::new(phi),
            phi_pp: SecretInt::new(BigInt::from(phi_pp)),
            phi_qq: SecretInt::new(BigInt::from(phi_qq)),
            pp_inv_mod_qq: SecretUint::new(pp_inv_mod_qq),
            p_inv_mod_q: SecretUint::new(p_inv_mod_q),
            hp: SecretUint::new(hp),
            hq: SecretUint::new(hq),
            n_inv_mod_phi: SecretUint::new(n_inv_mod_phi),
            q_mod_pm1: SecretUint::new(q_mod_pm1),
            p_mod_qm1: SecretUint::new(p_mod_qm1),
            mont_p,
            mont_q,
            mont_pp,
            mont_qq,
            nonce: None,
        };
        let nn = n * n;
        crt.nonce = OwnerNonceTables::new(
            n,
            &nn,
            &crt.moduli(),
            [&crt.mont_p, &crt.mont_q, &crt.mont_pp, &crt.mont_qq],
            |x| crt.nonce_pow_n(x),
        );
        Ok(crt)
    }

    /// The moduli and inverses CRT recombination needs.
    fn moduli(&self) -> CrtModuli<'_> {
        CrtModuli {
            p: self.p.expose(),
            q: self.q.expose(),
            p_inv_mod_q: self.p_inv_mod_q.expose(),
            pp: self.pp.expose(),
            qq: self.qq.expose(),
            pp_inv_mod_qq: self.pp_inv_mod_qq.expose(),
        }
    }

    /// Fresh ρ with ρ^N mod N² from the owner's tables (plain CRT if there are none).
    fn fresh_nonce(&self, rng: &mut impl CryptoRngCore, n: &BigUint, nn: &BigUint) -> FreshNonce {
        let (rho, rho_pow_n) = match self.nonce.as_ref() {
            Some(tables) => tables.sample(rng, &self.moduli(), n, nn),
            None => {
                let rho = SecretUint::new(random_unit(rng, n));
                let pow = SecretUint::new(self.nonce_pow_n(rho.expose()));
                (rho, pow)
            }
        };
        FreshNonce {
            rho: Nonce(rho),
            rho_pow_n,
        }
    }

    /// base^exp mod N² through the CRT over p² and q², exponents reduced mod φ(p²), φ(q²)
    /// (DFNS spec Alg. 2). `base` must be a unit; a negative exponent inverts the result.
    fn pow_mod_n2(&self, base: &BigUint, exp: &BigInt) -> BigUint {
        let e_p = SecretInt::new(exp.mod_floor(self.phi_pp.expose()));
        let e_q = SecretInt::new(exp.mod_floor(self.phi_qq.expose()));
        // fixed length: the reduced exponents may come from a prover (owner views)
        let (bits_p, bits_q) = (
            self.phi_pp.expose().bits() as usize,
            self.phi_qq.expose().bits() as usize,
        );
        let r_p = self
            .mont_pp
            .pow_fixed_bits(base, e_p.expose().magnitude(), bits_p);
        let r_q = self
            .mont_qq
            .pow_fixed_bits(base, e_q.expose().magnitude(), bits_q);
        crt_combine(
            &r_p,
            &r_q,
            self.pp.expose(),
            self.qq.expose(),
            self.pp_inv_mod_qq.expose(),
        )
    }

    /// base^exp mod N through the CRT over p and q (base a unit mod N, exp ≥ 0).
    fn pow_mod_n(&self, base: &BigUint, exp: &BigUint) -> BigUint {
        let (p, q) = (self.p.expose(), self.q.expose());
        let e_p = SecretUint::new(exp % (p - 1u32));
        let e_q = SecretUint::new(exp % (q - 1u32));
        let r_p = self
            .mont_p
            .pow_fixed_bits(base, e_p.expose(), p.bits() as usize);
        let r_q = self
            .mont_q
            .pow_fixed_bits(base, e_q.expose(), q.bits() as usize);
        crt_combine(&r_p, &r_q, p, q, self.p_inv_mod_q.expose())
    }

    /// ρ^N mod N² for a unit ρ, the expensive half of an encryption, by the key owner.
    ///
    /// Since a ≡ b (mod p) implies a^p ≡ b^p (mod p²), ρ^N = (ρ^q)^p ≡ (ρ^{q mod (p−1)} mod p)^p
    /// (mod p²), and likewise mod q². That is one exponentiation mod p with a 1536-bit exponent
    /// and one mod p² with exponent p, instead of a 3072-bit exponent mod p².
    fn nonce_pow_n(&self, rho: &BigUint) -> BigUint {
        let (p, q) = (self.p.expose(), self.q.expose());
        let (pp, qq) = (self.pp.expose(), self.qq.expose());
        let a_p = self.mont_p.pow(rho, self.q_mod_pm1.expose());
        let a_q = self.mont_q.pow(rho, self.p_mod_qm1.expose());
        let r_p = self.mont_pp.pow(&a_p, p);
        let r_q = self.mont_qq.pow(&a_q, q);
        crt_combine(&r_p, &r_q, pp, qq, self.pp_inv_mod_qq.expose())
    }
}

/// A Paillier-Blum secret key: the public key and the owner's CRT material (primes p, q and
/// the constants derived from them).
pub struct PaillierSecretKey {
    public: PaillierPublicKey,
    crt: Arc<PaillierCrt>,
}

impl fmt::Debug for PaillierSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaillierSecretKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl PaillierSecretKey {
    /// Builds a key from two distinct primes p ≡ q ≡ 3 (mod 4) whose product has at least
    /// [`MIN_MODULUS_BITS`] bits. Primality is the caller's guarantee (they come from
    /// [`crate::primes::generate_safe_prime`] or a pool filled by it).
    pub fn from_primes(p: BigUint, q: BigUint) -> Result<Self, PaillierError> {
        let p = SecretUint::new(p);
        let q = SecretUint::new(q);
        let (pe, qe) = (p.expose(), q.expose());
        if pe == qe {
            return Err(PaillierError::BadPrimes("p = q"));
        }
        let four = BigUint::from(4u32);
        let three = BigUint::from(3u32);
        if pe % &four != three || qe % &four != three {
            return Err(PaillierError::BadPrimes("p or q is not 3 mod 4"));
        }
        let public = PaillierPublicKey::from_modulus(pe * qe)?;
        let crt = PaillierCrt::new(p, q, public.n())?;
        Ok(Self {
            public,
            crt: Arc::new(crt),
        })
    }

    /// The public key N (plain: it carries no secret).
    pub fn public(&self) -> &PaillierPublicKey {
        &self.public
    }

    /// The public key with the owner's CRT attached: the same N, but every exponentiation
    /// modulo N² it does (encryption, [`PaillierPublicKey::pow_n2`], scalar multiplication)
    /// runs modulo p² and q² with reduced exponents. Give it as the verifier's key to the proofs
    /// this party verifies (Πaff-g's N0, Πdec's N) to verify 3–4× faster. It holds the secret:
    /// never send or store it; [`PaillierPublicKey::plain`] strips it.
    pub fn owner_public_key(&self) -> PaillierPublicKey {
        PaillierPublicKey {
            owner: Some(Arc::clone(&self.crt)),
            ..self.public.clone()
        }
    }

    /// The prime p (for proofs of the key's structure).
    pub(crate) fn p(&self) -> &BigUint {
        self.crt.p.expose()
    }

    /// The prime q.
    pub(crate) fn q(&self) -> &BigUint {
        self.crt.q.expose()
    }

    /// φ(N).
    pub(crate) fn phi(&self) -> &BigUint {
        self.crt.phi.expose()
    }

    /// N^{-1} mod φ(N).
    pub(crate) fn n_inv_mod_phi(&self) -> &BigUint {
        self.crt.n_inv_mod_phi.expose()
    }

    /// p^{-1} mod q.
    pub(crate) fn p_inv_mod_q(&self) -> &BigUint {
        self.crt.p_inv_mod_q.expose()
    }

    /// base^exp mod N² through the CRT over p² and q², exponents reduced mod φ(p²), φ(q²)
    /// (DFNS spec Alg. 2). `base` must be a unit; a negative exponent inverts the result.
    pub fn pow_mod_n2(&self, base: &BigUint, exp: &BigInt) -> BigUint {
        self.crt.pow_mod_n2(base, exp)
    }

    /// base^exp mod N through the CRT over p and q (base a unit mod N, exp ≥ 0).
    pub fn pow_mod_n(&self, base: &BigUint, exp: &BigUint) -> BigUint {
        self.crt.pow_mod_n(base, exp)
    }

    /// enc(m; ρ) computed by the key owner with the CRT.
    pub fn encrypt_with_nonce(
        &self,
        m: &BigInt,
        rho: &BigUint,
    ) -> Result<Ciphertext, PaillierError> {
        self.public.check_nonce(rho)?;
        let r_n = self.crt.nonce_pow_n(rho);
        Ok(Ciphertext(
            self.public.g_pow(m) * r_n % self.public.n_squared(),
        ))
    }

    /// A fresh uniform ρ ∈ Z*_N with ρ^N mod N², from the owner's fixed-base tables.
    pub fn fresh_nonce(&self, rng: &mut impl CryptoRngCore) -> FreshNonce {
        self.crt
            .fresh_nonce(rng, self.public.n(), self.public.n_squared())
    }

    /// enc(m; ρ) for randomness from [`Self::fresh_nonce`].
    pub fn encrypt_fresh(&self, m: &BigInt, nonce: &FreshNonce) -> Ciphertext {
        self.public.encrypt_fresh(m, nonce)
    }

    /// enc(m) with fresh randomness, by the key owner.
    pub fn encrypt(&self, rng: &mut impl CryptoRngCore, m: &BigInt) -> (Ciphertext, Nonce) {
        let nonce = self.fresh_nonce(rng);
        (self.encrypt_fresh(m, &nonce), nonce.into_nonce())
    }

    /// Decrypts to the representative in (−N/2, N/2] (CRT: m_p = L_p(c^{p−1} mod p²)·h_p).
    pub fn decrypt(&self, c: &Ciphertext) -> BigInt {
        let crt = &*self.crt;
        let (p, q) = (crt.p.expose(), crt.q.expose());
        let cp = crt.mont_pp.pow(&c.0, &(p - 1u32));
        let cq = crt.mont_qq.pow(&c.0, &(q - 1u32));
        let mp = ((cp - 1u32) / p) * crt.hp.expose() % p;
        let mq = ((cq - 1u32) / q) * crt.hq.expose() % q;
        let m = crt_combine(&mp, &mq, p, q, crt.p_inv_mod_q.expose());
        let n = self.public.n();
        if m > (n >> 1) {
            BigInt::from(m) - BigInt::from(n.clone())
        } else {
            BigInt::from(m)
        }
    }

    /// Decrypts a ciphertext that came from outside after re-randomising it: c' = c·ρ^N mod
    /// N² with a fresh ρ (owner tables, a few ms) has the same plaintext, but its value is
    /// unknown to whoever chose c, so the reductions modulo p² and q² inside the decryption
    /// no longer run on attacker-chosen numbers (the Brumley–Boneh timing attack on CRT
    /// exponentiation needs exactly that; audits/bigint-timing.md).
    pub fn decrypt_blinded(&self, rng: &mut impl CryptoRngCore, c: &Ciphertext) -> BigInt {
        self.decrypt(&self.blind(rng, c).0)
    }

    /// c·r^N mod N² for a fresh r (the same plaintext), and r.
    fn blind(&self, rng: &mut impl CryptoRngCore, c: &Ciphertext) -> (Ciphertext, FreshNonce) {
        let r = self.fresh_nonce(rng);
        let blinded = Ciphertext(c.0.clone() * r.rho_pow_n.expose() % self.public.n_squared());
        (blinded, r)
    }

    /// [`Self::decrypt_blinded`] that also recovers the ciphertext's own randomness: with
    /// c' = c·r^N, ρ_{c'} = ρ_c·r, so ρ_c = ρ_{c'}·r^{-1} mod N. For Πdec on an aggregate
    /// built from peer input (Fig. 9).
    pub fn decrypt_and_recover_blinded(
        &self,
        rng: &mut impl CryptoRngCore,
        c: &Ciphertext,
    ) -> (BigInt, Nonce) {
        let n = self.public.n();
        let (blinded, r) = self.blind(rng, c);
        let m = self.decrypt(&blinded);
        let rho_blinded = self.recover_nonce(&blinded);
        // r is a unit (fresh nonce), so the inverse exists
        let r_inv = SecretUint::new(mod_inverse(r.expose(), n).unwrap_or_default());
        let rho = Nonce(SecretUint::new(rho_blinded.expose() * r_inv.expose() % n));
        (m, rho)
    }

    /// Recovers the randomness ρ of a ciphertext: c ≡ ρ^N (mod N), so ρ = c^{N^{-1} mod φ(N)}
    /// mod N. Needed when the owner must prove facts about a ciphertext it did not encrypt
    /// itself (Πdec in Fig. 9).
    pub fn recover_nonce(&self, c: &Ciphertext) -> Nonce {
        let n = self.public.n();
        Nonce(SecretUint::new(
            self.crt
                .pow_mod_n(&(&c.0 % n), self.crt.n_inv_mod_phi.expose()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn key() -> PaillierSecretKey {
        let [p, q] = fixtures::safe_prime_pair(0);
        PaillierSecretKey::from_primes(p, q).unwrap()
    }

    /// The owner view computes exactly what the plain key computes, and strips cleanly.
    #[test]
    fn owner_view_matches_plain_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(21);
        let sk = key();
        let plain = sk.public().clone();
        let owner = sk.owner_public_key();
        assert_eq!(owner, plain);
        assert!(owner.is_owner_view() && !plain.is_owner_view());
        assert!(!owner.plain().is_owner_view());
        assert!(alloc::format!("{owner:?}").contains("owner CRT"));
        let m = crate::arith::random_signed_bits(&mut rng, 2000);
        let rho = plain.random_nonce(&mut rng);
        let c = plain.encrypt_with_nonce(&m, rho.expose()).unwrap();
        assert_eq!(owner.encrypt_with_nonce(&m, rho.expose()).unwrap(), c);
        for k in [
            BigInt::from(0),
            BigInt::from(-7),
            crate::arith::random_signed_bits(&mut rng, 3000),
        ] {
            assert_eq!(owner.mul_plain(&c, &k), plain.mul_plain(&c, &k));
            assert_eq!(owner.pow_n2(c.as_uint(), &k), plain.pow_n2(c.as_uint(), &k));
        }
        // non-units take the plain path: None for a negative exponent, the power otherwise
        let p_mult = sk.p().clone();
        assert_eq!(owner.pow_n2(&p_mult, &BigInt::from(-1)), None);
        assert_eq!(
            owner.pow_n2(&p_mult, &BigInt::from(3)),
            Some(p_mult.modpow(&BigUint::from(3u32), plain.n_squared()))
        );
        assert_eq!(
            owner.encrypt_with_nonce(&m, &p_mult),
            Err(PaillierError::NonceNotUnit)
        );
    }

    #[test]
    fn encrypt_decrypt_round_trip_with_and_without_crt() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk = key();
        let pk = sk.public().clone();
        assert!(pk.n().bits() >= 3072);
        for m in [
            BigInt::from(0),
            BigInt::from(1),
            BigInt::from(-1),
            crate::arith::random_signed_bits(&mut rng, 1500),
        ] {
            let (c, rho) = pk.encrypt(&mut rng, &m);
            assert_eq!(sk.decrypt(&c), m);
            assert_eq!(
                sk.encrypt_with_nonce(&m, rho.expose()).unwrap(),
                c,
                "CRT and plain encryption agree"
            );
            let (c2, rho2) = sk.encrypt(&mut rng, &m);
            assert_eq!(
                pk.encrypt_with_nonce(&m, rho2.expose()).unwrap(),
                c2,
                "owner encryption equals public encryption"
            );
            assert_eq!(sk.recover_nonce(&c).expose(), rho.expose());
        }
    }

    #[test]
    fn fresh_nonces_from_tables_match_direct_exponentiation() {
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let sk = key();
        let plain = sk.public().clone();
        let tabled = plain.with_nonce_tables();
        let owner = sk.owner_public_key();
        assert!(!plain.has_fast_nonces());
        assert!(tabled.has_fast_nonces() && owner.has_fast_nonces());
        assert_eq!(tabled, plain, "tables do not change the key");
        let m = BigInt::from(-123_456_789i64);
        for (name, nonce) in [
            ("public tables", tabled.fresh_nonce(&mut rng)),
            ("owner tables", sk.fresh_nonce(&mut rng)),
            ("owner view", owner.fresh_nonce(&mut rng)),
            ("no tables", plain.fresh_nonce(&mut rng)),
        ] {
            let rho = nonce.expose().clone();
            assert!(plain.check_nonce(&rho).is_ok(), "{name}: ρ is a unit");
            let c = plain.encrypt_fresh(&m, &nonce);
            assert_eq!(
                c,
                plain.encrypt_with_nonce(&m, &rho).unwrap(),
                "{name}: ρ^N from the tables is ρ^N"
            );
            assert_eq!(sk.decrypt(&c), m, "{name}");
            assert_eq!(sk.recover_nonce(&c).expose(), &rho, "{name}");
        }
        // fresh every time
        let a = tabled.fresh_nonce(&mut rng);
        let b = tabled.fresh_nonce(&mut rng);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "FreshNonce(<redacted>)");
    }

    #[test]
    fn homomorphic_operations() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let sk = key();
        let pk = sk.public();
        let a = BigInt::from(123_456_789);
        let b = BigInt::from(-987_654_321);
        let (ca, _) = pk.encrypt(&mut rng, &a);
        let (cb, _) = pk.encrypt(&mut rng, &b);
        assert_eq!(sk.decrypt(&pk.add(&ca, &cb)), &a + &b);
        assert_eq!(sk.decrypt_blinded(&mut rng, &ca), a);
        let (m, rho) = sk.decrypt_and_recover_blinded(&mut rng, &ca);
        assert_eq!(m, a);
        assert_eq!(rho.expose(), sk.recover_nonce(&ca).expose());
        assert_eq!(sk.decrypt_blinded(&mut rng, &pk.negate(&cb)), -&b);
        assert_eq!(sk.decrypt(&pk.mul_plain(&ca, &BigInt::from(-7))), &a * -7);
        assert_eq!(sk.decrypt(&pk.negate(&cb)), -&b);
        let big = crate::arith::random_signed_bits(&mut rng, 600);
        assert_eq!(
            sk.pow_mod_n2(ca.as_uint(), &big),
            crate::arith::mod_pow_signed(ca.as_uint(), &big, pk.n_squared()).unwrap()
        );
    }

    /// PARAM-01: a small modulus is refused before anything else is looked at.
    #[test]
    fn small_or_even_modulus_is_refused() {
        let small = BigUint::from(3233u32); // 61 · 53
        assert_eq!(
            PaillierPublicKey::from_modulus(small),
            Err(PaillierError::ModulusTooSmall { bits: 12 })
        );
        let almost = (BigUint::one() << 3071u32) + 1u32; // 3072 bits, but let us drop one bit
        assert!(PaillierPublicKey::from_modulus(almost >> 1u32).is_err());
        let even = BigUint::one() << 3072u32;
        assert_eq!(
            PaillierPublicKey::from_modulus(even),
            Err(PaillierError::EvenModulus)
        );
        let huge = (BigUint::one() << 5000u32) + 1u32;
        assert!(matches!(
            PaillierPublicKey::from_modulus(huge),
            Err(PaillierError::ModulusTooLarge { .. })
        ));
    }

    /// PRE-05: zero, N², multiples of a factor and out-of-range values are not ciphertexts.
    #[test]
    fn non_unit_ciphertexts_and_nonces_are_refused() {
        let sk = key();
        let pk = sk.public();
        for bad in [
            BigUint::zero(),
            pk.n_squared().clone(),
            pk.n_squared() + 1u32,
            pk.n().clone(),
            sk.p().clone(),
            sk.q() * 5u32,
        ] {
            assert_eq!(pk.ciphertext(bad), Err(PaillierError::CiphertextNotUnit));
        }
        assert!(pk.ciphertext(BigUint::from(2u32)).is_ok());
        for bad in [BigUint::zero(), pk.n().clone(), sk.p().clone()] {
            assert_eq!(pk.check_nonce(&bad), Err(PaillierError::NonceNotUnit));
            assert_eq!(
                pk.encrypt_with_nonce(&BigInt::from(1), &bad),
                Err(PaillierError::NonceNotUnit)
            );
        }
    }

    #[test]
    fn ciphertext_encoding_is_fixed_width_and_validated() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let sk = key();
        let pk = sk.public();
        let (c, _) = pk.encrypt(&mut rng, &BigInt::from(42));
        let bytes = pk.ciphertext_to_bytes(&c);
        assert_eq!(bytes.len(), pk.ciphertext_len());
        assert_eq!(pk.ciphertext_from_bytes(&bytes).unwrap(), c);
        assert!(matches!(
            pk.ciphertext_from_bytes(&bytes[1..]),
            Err(PaillierError::CiphertextLength { .. })
        ));
        assert_eq!(
            pk.ciphertext_from_bytes(&alloc::vec![0u8; pk.ciphertext_len()]),
            Err(PaillierError::CiphertextNotUnit)
        );
        assert_eq!(
            pk.ciphertext_from_bytes(&alloc::vec![0xFFu8; pk.ciphertext_len()]),
            Err(PaillierError::CiphertextNotUnit)
        );
    }

    #[test]
    fn bad_primes_are_refused_and_secrets_do_not_print() {
        let [p, q] = fixtures::safe_prime_pair(0);
        assert!(PaillierSecretKey::from_primes(p.clone(), p.clone()).is_err());
        assert!(
            PaillierSecretKey::from_primes(p.clone(), &q + 2u32).is_err(),
            "q + 2 ≡ 1 mod 4"
        );
        let sk = PaillierSecretKey::from_primes(p.clone(), q).unwrap();
        let shown = alloc::format!("{sk:?}");
        assert!(!shown.contains(&p.to_string()) && !shown.contains(&alloc::format!("{p:x}")));
    }
}

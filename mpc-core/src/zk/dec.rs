//! Πdec — Paillier decryption modulo q (CGGMP24 Fig. 28). (being written)

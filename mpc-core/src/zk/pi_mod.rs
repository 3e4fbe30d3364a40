//! Πmod — Paillier-Blum modulus (CGGMP24 Fig. 12). (being written)

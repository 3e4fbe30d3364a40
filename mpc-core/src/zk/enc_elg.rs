//! Πenc-elg — Paillier encryption in range with El-Gamal commitment (CGGMP24 Fig. 24). (being written)

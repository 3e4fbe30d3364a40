//! Πaff-g — Paillier affine operation with group commitment in range (CGGMP24 Fig. 25). (being written)

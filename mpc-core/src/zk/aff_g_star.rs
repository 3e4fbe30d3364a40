//! Πaff-g* — setup-less affine operation with group commitment (CGGMP24 Fig. 27). (being written)

//! Πprm — ring-Pedersen parameters (CGGMP24 Fig. 13). (being written)

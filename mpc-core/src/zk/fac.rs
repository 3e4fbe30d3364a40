//! Πfac — no small factor (CGGMP24 Fig. 26). (being written)

//! Πelog — discrete log vs El-Gamal commitment (CGGMP24 Fig. 23). (being written)

//! hotspot-credentials: see DESIGN.md section 7.

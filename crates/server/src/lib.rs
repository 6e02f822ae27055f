//! hotspot-server: see DESIGN.md section 7.

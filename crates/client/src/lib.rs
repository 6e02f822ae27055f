//! hotspot-client: see DESIGN.md section 7.

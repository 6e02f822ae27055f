//! hotspot-core: see DESIGN.md section 7.

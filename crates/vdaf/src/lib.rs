//! hotspot-vdaf: see DESIGN.md section 7.

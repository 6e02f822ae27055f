//! hotspot-dashboard: the health authority dashboard, alert delivery and exposure list over HTTP.

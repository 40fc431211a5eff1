// The live dashboard served at GET /dashboard: one self-contained HTML page (inline
// CSS and JavaScript, no CDN, no build step) that polls /v1/status every second and draws its
// charts on <canvas> elements. docs/operations.md describes the panels.
// Thread-safe: the page is a constant.
#pragma once

#include <string>

namespace brainstem {

const std::string& DashboardPage();

}  // namespace brainstem

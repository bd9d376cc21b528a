// The chat page served at / (web/index.html), embedded in the binary at build time (embed.cmake):
// it works offline, with nothing fetched from elsewhere.
#pragma once

namespace dsv3::server {

extern const char kWebPage[];  // NUL-terminated HTML

}  // namespace dsv3::server

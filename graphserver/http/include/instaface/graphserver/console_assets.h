// The console page's files (graphserver/console/), built into the graphserver binary so that a
// node serves its own console with nothing installed beside it and no CDN: `GET /` answers
// index.html and `GET /console/<name>` the file of that name.
//
// Thread safety: immutable after first use; safe from any thread.
#ifndef INSTAFACE_GRAPHSERVER_CONSOLE_ASSETS_H_
#define INSTAFACE_GRAPHSERVER_CONSOLE_ASSETS_H_

#include <string_view>
#include <vector>

namespace instaface::graphserver {

struct ConsoleAsset {
  std::string_view name;          // file name, e.g. "app.js"
  std::string_view content_type;  // from the extension
  std::string_view body;
};

// Every file of graphserver/console/ as it was at build time, sorted by name.
const std::vector<ConsoleAsset>& ConsoleAssets();

// The asset called `name` in `assets`, or null.
inline const ConsoleAsset* FindConsoleAsset(const std::vector<ConsoleAsset>& assets,
                                            std::string_view name) {
  for (const ConsoleAsset& a : assets) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace instaface::graphserver

#endif  // INSTAFACE_GRAPHSERVER_CONSOLE_ASSETS_H_

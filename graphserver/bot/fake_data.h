// Made-up people and what they post, for the load bot: a first and a last name for each new
// user and the text of each status. The lists are small and fixed so that a seed replays the
// same data; some texts carry quotes, ampersands and angle brackets so that every run also
// exercises the escaping of attributes on their way into MySQL and back out as JSON.
//
// Thread safety: the functions are pure apart from the generator they are handed.
#ifndef INSTAFACE_GRAPHSERVER_BOT_FAKE_DATA_H_
#define INSTAFACE_GRAPHSERVER_BOT_FAKE_DATA_H_

#include <random>
#include <string>

namespace instaface::bot {

std::string FakeFirstName(std::mt19937_64& rng);
std::string FakeLastName(std::mt19937_64& rng);
std::string FakeStatusText(std::mt19937_64& rng);

}  // namespace instaface::bot

#endif  // INSTAFACE_GRAPHSERVER_BOT_FAKE_DATA_H_

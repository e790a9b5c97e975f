#include "fake_data.h"

#include <string_view>

namespace instaface::bot {
namespace {

constexpr std::string_view kFirstNames[] = {
    "Ada",   "Bram",   "Cleo",   "Dmitri", "Esme",  "Farid", "Greta", "Hiro", "Ines",   "Jonas",
    "Kira",  "Lionel", "Maud",   "Nils",   "Odile", "Pavel", "Quinn", "Rosa", "Sami",   "Tova",
    "Ulric", "Vera",   "Wendel", "Xenia",  "Yusuf", "Zora",  "Amaru", "Bea",  "Cosmo",  "Delia",
    "Emeka", "Fern",   "Gideon", "Hana",   "Ivo",   "Juno",  "Kofi",  "Lark", "Mirela", "Noor"};

constexpr std::string_view kLastNames[] = {
    "Abernathy", "Bellweather", "Castellano",  "Dunmore",   "Eriksen",   "Featherstone",
    "Galloway",  "Hollins",     "Ibarra",      "Jaworski",  "Kettering", "Lindqvist",
    "Marchetti", "Nakamura",    "O'Dwyer",     "Pemberton", "Quaresma",  "Rutherford",
    "Sandoval",  "Thistlewood", "Underhill",   "Valdivia",  "Whitcombe", "Yardley",
    "Zielinski", "Achterberg",  "Brannigan",   "Coelho",    "Drummond",  "Esterhazy",
    "Fairbairn", "Grimaldi",    "Haverford",   "Iwasaki",   "Juniper",   "Kowalczyk",
    "Lachance",  "Moreau",      "Nightingale", "Okonkwo"};

constexpr std::string_view kStatusTexts[] = {
    "Finally fixed the squeaky door. It was the other door.",
    "My sourdough starter has a name now, and opinions.",
    "Is it still a shortcut if it takes twice as long?",
    "Watered the plastic plant again. Old habits.",
    "Three coffees in and the week is starting to make sense.",
    "Learnt that \"some assembly required\" means all of it.",
    "The cat has claimed the new chair & the old one.",
    "Ran 5k this morning <personal best> and regretted nothing.",
    "Found a 10-year-old grocery list in a coat pocket: eggs, hope.",
    "Who decided socks should come in pairs but never leave in them?",
    "Rained all day, so the garden watered itself. Teamwork.",
    "Tried a new recipe; the smoke alarm gave it a standing ovation.",
    "If you need me I'll be untangling these fairy lights until June.",
    "Bus was on time today. Suspicious.",
    "My to-do list now has a to-do list.",
    "Spent an hour choosing a film and then watched the trailer.",
    "Planted tomatoes. Now we wait, and worry.",
    "The library fine was worth it, that book was great.",
    "Someone parked a bicycle inside a bicycle. Art, probably.",
    "Note to self: the 'reply all' button is not a toy.",
    "Painted the fence. Half the fence. The half that shows.",
    "A pigeon stared at me for a full minute. I blinked first.",
    "New glasses: turns out trees have leaves, individually.",
    "Cleaned the fridge and found a sandwich from another era.",
    "Board game night ended in a truce & a lot of snacks.",
    "Today's goal: be as productive as my phone thinks I am.",
    "Lost the remote, found three pens and a mystery key.",
    "Kayaked across the lake; the lake won on points.",
    "The neighbour's dog has learnt my name. I have not learnt his.",
    "Wrote a poem about Mondays. It rhymes with \"why\".",
    "Went for a walk 'to clear my head'; came back with a plant.",
    "Two weeks of <practice> and I can almost juggle two balls."};

template <size_t N>
std::string Pick(std::mt19937_64& rng, const std::string_view (&options)[N]) {
  return std::string(options[std::uniform_int_distribution<size_t>(0, N - 1)(rng)]);
}

}  // namespace

std::string FakeFirstName(std::mt19937_64& rng) { return Pick(rng, kFirstNames); }
std::string FakeLastName(std::mt19937_64& rng) { return Pick(rng, kLastNames); }
std::string FakeStatusText(std::mt19937_64& rng) { return Pick(rng, kStatusTexts); }

}  // namespace instaface::bot

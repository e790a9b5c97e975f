// Reading the answer to POST /api/graph/query. The graphserver first answered with a bare JSON
// array of trees, one per requested entity; the original Instaface wraps them in an envelope,
// {"stats": {...}, "entities": [...]}. The bot accepts either, so that it runs against servers
// of both forms.
//
// Thread safety: pure functions.
#ifndef INSTAFACE_GRAPHSERVER_BOT_QUERY_ANSWER_H_
#define INSTAFACE_GRAPHSERVER_BOT_QUERY_ANSWER_H_

#include <nlohmann/json.hpp>

namespace instaface::bot {

// The array of trees in `answer`: the answer itself when it is an array, its "entities" member
// when it is an object whose "entities" is an array; null otherwise. The pointer refers into
// `answer` and lives as long as it does.
const nlohmann::json* QueryAnswerEntities(const nlohmann::json& answer);

}  // namespace instaface::bot

#endif  // INSTAFACE_GRAPHSERVER_BOT_QUERY_ANSWER_H_

// A timeline answer made ready to draw. A user with no posts has no "posted" key at all
// (likewise "liked", "likedby", "postedby"), so every list here may be missing. No DOM here.

export function displayName(user) {
  if (!user) return 'someone';
  const full = [user.firstName, user.lastName].filter(Boolean).join(' ');
  return full || user.name || `user ${user.id}`;
}

// ISO 8601 in ms since the epoch. A time without a zone ("2026-12-02 18:04:05", as MySQL writes
// a DATETIME) is read as UTC, where Date.parse alone would read it as local time.
export function parseTime(value) {
  if (typeof value !== 'string') return NaN;
  if (/^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(value)) {
    return Date.parse(`${value.replace(' ', 'T')}Z`);
  }
  return Date.parse(value);
}

// The owner's posts and likes as one list, newest first by when each was linked to the owner.
export function unifiedTimeline(owner) {
  const items = [
    ...(owner.posted || []).filter(Boolean).map((post) => ({ kind: 'posted', post })),
    ...(owner.liked || []).filter(Boolean).map((post) => ({ kind: 'liked', post })),
  ];
  for (const item of items) item.at = parseTime(item.post.linked);
  items.sort((a, b) => (b.at || 0) - (a.at || 0) || (b.post.id || 0) - (a.post.id || 0));
  return items;
}

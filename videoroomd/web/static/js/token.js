// An access token given as ?token= (or #token=, which never reaches any server): kept in memory
// only and taken out of the address bar at once, so that it is not bookmarked, shared, or sent
// on in a URL (the join payload carries it).
export function takeToken(params) {
  const hash = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token") || hash.get("token");
  if (!token) return null;
  params.delete("token");
  let fragment = location.hash;
  if (hash.has("token")) {
    hash.delete("token");
    fragment = hash.toString() ? `#${hash}` : "";
  }
  const rest = params.toString();
  history.replaceState(history.state, "", `${location.pathname}${rest ? `?${rest}` : ""}${fragment}`);
  return token;
}

// The name an access token carries, to show before joining (the server checks the token and
// shows this name to the others whatever the page sends); "" when it has none.
export function tokenName(token) {
  try {
    const bytes = Uint8Array.from(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
    const name = JSON.parse(new TextDecoder().decode(bytes)).name;
    return typeof name === "string" ? name : "";
  } catch {
    return "";
  }
}


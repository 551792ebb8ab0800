// What the page says when the server refuses a join, by the refusal's code.

export const UNKNOWN_ROOM = "There is no room with this name. Check the link, or pick a room from the list.";
export const REFUSALS = {
  room_full: (reason) => `${reason}. Try again later, or pick another room.`,
  wrong_password: (reason) => (reason === "this room needs a password" ? "This room needs a password." : "Wrong password. Try again."),
  unknown_room: () => UNKNOWN_ROOM,
  shutting_down: () => "The server is shutting down. Try again in a minute.",
};

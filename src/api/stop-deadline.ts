/** How long the API's closing may take in all: streams ended, hooks run, connections closed. */
export const API_STOP_DEADLINE_MS = 30_000;

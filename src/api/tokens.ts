/** Injection tokens for what the API gets from outside Nest. Symbols, so no two can collide. */
export const CONFIG = Symbol('AtelierConfig');
export const AGENTS = Symbol('AgentsFile');
export const PG_POOL = Symbol('PgPool');
export const TEMPORAL_CLIENT = Symbol('TemporalClient');

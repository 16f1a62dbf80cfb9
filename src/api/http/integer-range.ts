/**
 * An integer field's limits as the OpenAPI description states them. A `{min, max}` limit spread into
 * `@ApiProperty` as it is would be copied under those names, which OpenAPI does not know: the schema
 * would say no range at all.
 */
export const integerRange = (limit: { min: number; max: number }) =>
  ({ type: 'integer', minimum: limit.min, maximum: limit.max }) as const;

import assert from 'node:assert/strict';
import { call } from './http-api';

export interface Schema {
  $ref?: string;
  allOf?: Schema[];
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
}

type Responses = Record<string, { description: string; content?: Record<string, { schema: Schema }> }>;

export interface OpenApiDoc {
  paths: Record<string, Record<string, { responses: Responses }>>;
  components: { schemas: Record<string, Schema> };
}

export const openApiDoc = async (baseUrl: string): Promise<OpenApiDoc> =>
  (await call(baseUrl, 'GET', '/docs/openapi.json')).json as OpenApiDoc;

/** A schema with its reference followed: `$ref`, or the one `allOf` @nestjs/swagger writes for a nullable object. */
export function resolve(doc: OpenApiDoc, schema: Schema | undefined): Schema {
  if (schema?.$ref) return doc.components.schemas[schema.$ref.split('/').at(-1) ?? ''] ?? {};
  if (schema?.allOf?.length === 1) return resolve(doc, schema.allOf[0]);
  return schema ?? {};
}

/** The JSON schema the API description gives the answer `code` of `method path`. */
export const answerSchema = (doc: OpenApiDoc, path: string, method: string, code: string): Schema =>
  resolve(doc, doc.paths[path]?.[method]?.responses[code]?.content?.['application/json']?.schema);

/**
 * Asserts that `schema` names exactly the fields of `value`, a real answer, and so on down: each field
 * holding an object (or an array of them, judged by its first element) against its own schema. A null
 * field or an empty array says nothing of its schema's fields.
 */
export function assertDescribes(doc: OpenApiDoc, schema: Schema, value: unknown, where: string): void {
  const fields = Object.keys(schema.properties ?? {}).sort();
  assert.deepEqual(fields, Object.keys(value as object).sort(), `the fields of ${where}`);
  for (const [name, field] of Object.entries(value as Record<string, unknown>)) {
    const described = resolve(doc, schema.properties?.[name]);
    const item = Array.isArray(field) ? field[0] : field;
    const itemSchema = Array.isArray(field) ? resolve(doc, described.items) : described;
    // A free-form map (labels) has no fields to compare.
    if (item !== null && typeof item === 'object' && !Array.isArray(item) && !itemSchema.additionalProperties) {
      assertDescribes(doc, itemSchema, item, `${where}.${name}`);
    }
  }
}

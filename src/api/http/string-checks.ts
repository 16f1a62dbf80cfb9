import { ValidateBy, type ValidationOptions } from 'class-validator';

const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** True for text PostgreSQL stores as it is: no NUL, and well-formed Unicode (no unpaired surrogate). */
export const isStorableText = (value: string): boolean => !value.includes('\u0000') && !UNPAIRED_SURROGATE.test(value);

/**
 * PostgreSQL text cannot hold NUL, and an unpaired surrogate would be stored as something other than
 * what was sent; refusing both here turns a would-be 500 (or a silent change) into a named 400.
 */
export const StorableText = (options?: ValidationOptions): PropertyDecorator =>
  ValidateBy(
    {
      name: 'storableText',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || isStorableText(value),
        defaultMessage: (args) => `${args?.property ?? 'value'} must not contain NUL characters or unpaired surrogates`,
      },
    },
    options,
  );

/** A flat object of string keys to string values, bounded in size. */
export const IsStringRecord = (maxEntries: number, maxLength: number, options?: ValidationOptions): PropertyDecorator =>
  ValidateBy(
    {
      name: 'isStringRecord',
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
          const entries = Object.entries(value);
          return (
            entries.length <= maxEntries &&
            entries.every(
              ([k, v]) =>
                k.length > 0 &&
                k.length <= maxLength &&
                typeof v === 'string' &&
                v.length <= maxLength &&
                isStorableText(k) &&
                isStorableText(v),
            )
          );
        },
        defaultMessage: (args) =>
          `${args?.property ?? 'value'} must be an object of at most ${maxEntries} string values (keys and values 1..${maxLength} characters)`,
      },
    },
    options,
  );

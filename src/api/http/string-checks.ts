import { ValidateBy, type ValidationOptions } from 'class-validator';

/** PostgreSQL text cannot hold NUL; refusing it here turns a would-be 500 into a named 400. */
export const NoNulCharacters = (options?: ValidationOptions): PropertyDecorator =>
  ValidateBy(
    {
      name: 'noNulCharacters',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || !value.includes('\u0000'),
        defaultMessage: (args) => `${args?.property ?? 'value'} must not contain NUL characters`,
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
                !k.includes('\u0000') &&
                !v.includes('\u0000'),
            )
          );
        },
        defaultMessage: (args) =>
          `${args?.property ?? 'value'} must be an object of at most ${maxEntries} string values (keys and values 1..${maxLength} characters)`,
      },
    },
    options,
  );

import { ValidateBy, type ValidationOptions } from 'class-validator';

/**
 * At most `places` decimal places, for any finite number however it is written: class-validator's own
 * `maxDecimalPlaces` throws on exponent forms such as `1e-7` (a 500 instead of a 400). Pair it with
 * `IsNumber`, which refuses what is not a finite number.
 */
export const MaxDecimalPlaces = (places: number, options?: ValidationOptions): PropertyDecorator =>
  ValidateBy(
    {
      name: 'maxDecimalPlaces',
      validator: {
        validate: (value: unknown) =>
          typeof value !== 'number' || !Number.isFinite(value) || Number(value.toFixed(places)) === value,
        defaultMessage: (args) => `${args?.property ?? 'value'} must have at most ${places} decimal places`,
      },
    },
    options,
  );

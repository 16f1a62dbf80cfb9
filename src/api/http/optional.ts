import { ValidateIf } from 'class-validator';

/**
 * An optional request field: when absent its checks are skipped; `null` is checked like any other value,
 * so it is refused with the field's own error. (`IsOptional` skips `null` too, and passes it on to code
 * that expects the field's type.)
 */
export const Optional = (): PropertyDecorator => ValidateIf((_object: object, value: unknown) => value !== undefined);

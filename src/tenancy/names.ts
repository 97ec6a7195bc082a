/**
 * Namespace and broker names are DNS labels (RFC 1035 section 2.3.1): a letter, then letters,
 * digits or hyphens, ending with a letter or digit, at most 63 characters. They are
 * case-insensitive, so they are stored and compared lower-cased; together with the configured
 * domain they form the broker's host name `<broker>.<namespace>.<domain>`.
 */
const LABEL = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** The canonical (lower-cased) name, or undefined when `name` is not a DNS label. */
export function canonicalName(name: unknown): string | undefined {
  if (typeof name !== 'string') return undefined;
  const lower = name.toLowerCase();
  return LABEL.test(lower) ? lower : undefined;
}

/** Why `name` is not a DNS label, in words a user can act on. */
export function nameProblem(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) return 'a name is required';
  if (name.length > 63) return `"${name}" is longer than 63 characters`;
  if (!/^[a-zA-Z]/.test(name)) return `"${name}" must start with a letter`;
  if (/-$/.test(name)) return `"${name}" must not end with a hyphen`;
  return `"${name}" may contain only letters, digits and hyphens`;
}

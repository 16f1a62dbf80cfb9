import type { OutputFormat } from '../../../src/config/agents-file';
import { aiderTextParser } from './aider-text';
import { claudeJsonParser } from './claude-json';
import { claudeStreamJsonParser } from './claude-stream-json';
import { codexJsonlParser } from './codex-jsonl';
import { geminiJsonParser } from './gemini-json';
import { geminiStreamJsonParser } from './gemini-stream-json';
import { ollamaHttpParser } from './ollama-http';
import { textParser } from './text';
import type { OutputParser, ParserFactory } from './types';

/** Every output parser, by the name a profile's `output` gives. */
export const OUTPUT_PARSERS: Readonly<Record<OutputFormat, ParserFactory>> = {
  text: textParser,
  'claude-stream-json': claudeStreamJsonParser,
  'claude-json': claudeJsonParser,
  'codex-jsonl': codexJsonlParser,
  'gemini-json': geminiJsonParser,
  'gemini-stream-json': geminiStreamJsonParser,
  'aider-text': aiderTextParser,
  'ollama-http': ollamaHttpParser,
};

/** A fresh parser for one run of an agent whose profile says `output: format`. */
export const createParser = (format: OutputFormat): OutputParser => OUTPUT_PARSERS[format]();

export type { OutputParser, OutputStream, ParsedOutput, RunEnd } from './types';

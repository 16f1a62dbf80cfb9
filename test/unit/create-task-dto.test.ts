import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestException } from '@nestjs/common';
import { CreatePlanDto } from '../../src/api/plans/dto/create-plan.dto';
import { CreateTaskDto } from '../../src/api/tasks/dto/create-task.dto';
import { validationPipe, type FieldProblem } from '../../src/api/http/validation';

/** The body through the API's global pipe, as a request would go: the fields it names when it is a 400. */
async function problems(metatype: typeof CreateTaskDto | typeof CreatePlanDto, body: object): Promise<string[]> {
  try {
    await validationPipe().transform(body, { type: 'body', metatype });
    return [];
  } catch (err) {
    assert.ok(err instanceof BadRequestException, String(err));
    const answer = err.getResponse() as { message: string; fields: FieldProblem[] };
    return answer.fields.map((f) => `${f.field}: ${f.problems.join(', ')}`);
  }
}

describe('the model of a task', () => {
  it('is refused, naming model, when it begins with "-" (it would reach the agent as an option)', async () => {
    for (const model of ['--approval-mode=yolo', '-y', '-']) {
      const found = await problems(CreateTaskDto, { prompt: 'p', model });
      assert.equal(found.length, 1, found.join('; '));
      assert.match(found[0] ?? '', /^model: model must not begin with "-"/);
    }
  });

  it('is refused the same way in a task of a plan', async () => {
    const found = await problems(CreatePlanDto, { tasks: [{ key: 'a', prompt: 'p', model: '--yolo' }] });
    assert.deepEqual(
      found.map((f) => f.split(':')[0]),
      ['tasks.0.model'],
    );
  });

  it('is accepted otherwise, hyphens inside included', async () => {
    for (const model of ['gemini-2.5-pro', 'qwen2.5-coder:7b', 'openai/gpt-4o-mini']) {
      assert.deepEqual(await problems(CreateTaskDto, { prompt: 'p', model }), [], model);
    }
  });
});

describe('nested objects', () => {
  it('refuses an array where a task of a plan goes, naming tasks', async () => {
    for (const tasks of [[[]], [[{ key: 'a', prompt: 'p' }]]]) {
      const found = await problems(CreatePlanDto, { tasks });
      assert.ok(found.length > 0, JSON.stringify(tasks));
      assert.ok(
        found.every((f) => /^tasks(\.0)?: /.test(f)),
        found.join('; '),
      );
      assert.ok(
        found.some((f) => /must be an object/.test(f)),
        found.join('; '),
      );
    }
  });

  it('refuses an array where the repo object goes, naming repo', async () => {
    for (const repo of [[], [{ path: '/tmp' }]]) {
      const found = await problems(CreateTaskDto, { prompt: 'p', repo });
      assert.ok(found.length > 0, JSON.stringify(repo));
      assert.ok(
        found.some((f) => /^repo: .*must be an object/.test(f)),
        found.join('; '),
      );
    }
  });
});

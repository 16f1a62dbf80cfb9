import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roundTrips, storeOperationsIn } from '../bench/round-trips';

const EXPOSITION = `# HELP persistence_requests persistence_requests counter
# TYPE persistence_requests counter
persistence_requests{operation="UpdateWorkflowExecution",service_name="history"} 1200
persistence_requests{operation="UpdateWorkflowExecution",service_name="frontend"} 6
persistence_requests{operation="CreateWorkflowExecution",service_name="history"} 200
persistence_requests_latency_count{operation="CreateWorkflowExecution"} 200
visibility_persistence_requests{operation="RecordWorkflowExecutionStarted"} 200
`;

describe('benchmark database round trips', () => {
  it("reads the Temporal server's store operations by operation, from its metrics and no others", () => {
    assert.deepEqual(
      storeOperationsIn(EXPOSITION),
      new Map([
        ['UpdateWorkflowExecution', 1206],
        ['CreateWorkflowExecution', 200],
      ]),
    );
  });

  it("works out the operations and transactions per task, leaving out the benchmark's own queries", () => {
    const trips = roundTrips(
      {
        before: new Map([['UpdateWorkflowExecution', 6]]),
        after: new Map([
          ['UpdateWorkflowExecution', 606],
          ['CreateWorkflowExecution', 100],
          ['GetTasks', 2],
        ]),
      },
      { before: 1000, after: 1950, ownQueries: 50 },
      100,
    );
    // GetTasks, 0.02 per task, is below what the breakdown shows but counts in the total.
    assert.deepEqual(trips.temporalStoreByOperation, { UpdateWorkflowExecution: 6, CreateWorkflowExecution: 1 });
    assert.equal(trips.temporalStorePerTask, 7.02);
    assert.equal(trips.postgresTransactionsPerTask, 9);
  });
});

// A model's events, newest first: the history index in SQLite (never a walk of git).
import type { History as HistoryPage, HistoryEntry } from '../api/index.ts';
import { parseLimit } from '../identifiers.ts';
import type { EventRow } from '../metadata/events.ts';
import type { Catalog } from './catalog.ts';

export class History {
  constructor(private readonly catalog: Catalog) {}

  page(name: string, query: { limit?: unknown; cursor?: unknown }): HistoryPage {
    const { catalog } = this;
    const model = catalog.requireModel(name);
    const limit = parseLimit(query.limit);
    const list = `history:${model.id}`;
    const rows = catalog.events.history(model.id, { beforeId: catalog.cursors.decode<number>(list, query.cursor, 'number'), limit: limit + 1 });
    const { page, next_cursor } = catalog.cursors.page(list, rows, limit, (last) => last.id);
    return { events: page.map(historyEntry), next_cursor };
  }
}

function historyEntry(e: EventRow): HistoryEntry {
  return {
    id: e.id,
    commit: e.commit_id,
    event: e.kind,
    version: e.version,
    alias: e.alias,
    author: e.actor,
    time: e.time,
    subject: e.subject,
    message: e.message,
  };
}

/**
 * The prepared statements of the SQLite message store (sqlite-message-store.ts), in one
 * place so the store reads as what it does with them.
 */
import type { SqliteDatabase } from './sqlite-account-store.js'

export const prepareMessageQueries = (db: SqliteDatabase) => ({
  userExists: db.prepare('SELECT 1 FROM users WHERE user_id = ?').pluck(),

  insertContact: db.prepare('INSERT OR IGNORE INTO contacts (user_id, contact_user_id, created_at_ms) VALUES (?, ?, ?)'),
  deleteContact: db.prepare('DELETE FROM contacts WHERE user_id = ? AND contact_user_id = ?'),
  listContacts: db.prepare('SELECT contact_user_id FROM contacts WHERE user_id = ? ORDER BY contact_user_id').pluck(),

  insertGroup: db.prepare('INSERT INTO groups (name, created_by_user_id, created_at_ms) VALUES (?, ?, ?)'),
  groupById: db.prepare('SELECT * FROM groups WHERE group_id = ?'),
  groupExists: db.prepare('SELECT 1 FROM groups WHERE group_id = ?').pluck(),
  renameGroup: db.prepare('UPDATE groups SET name = ? WHERE group_id = ?'),
  insertMember: db.prepare('INSERT INTO group_members (group_id, user_id, joined_at_ms) VALUES (?, ?, ?)'),
  isMember: db.prepare('SELECT 1 FROM group_members WHERE group_id = ? AND user_id = ?').pluck(),
  deleteMember: db.prepare('DELETE FROM group_members WHERE group_id = ? AND user_id = ?'),
  listMembers: db.prepare('SELECT user_id FROM group_members WHERE group_id = ? ORDER BY user_id').pluck(),
  groupsOf: db.prepare('SELECT g.* FROM group_members m JOIN groups g ON g.group_id = m.group_id WHERE m.user_id = ? ORDER BY m.group_id'),

  insertMessage: db.prepare(`
    INSERT INTO messages (sender_user_id, sender_device_id, client_msg_id, to_kind, to_id, body, sent_at_ms)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (sender_user_id, client_msg_id) DO NOTHING
    RETURNING msg_id`).pluck(),
  messageByClientId: db.prepare(
    'SELECT msg_id, sender_user_id, sender_device_id, to_kind, to_id, sent_at_ms FROM messages WHERE sender_user_id = ? AND client_msg_id = ?',
  ),
  messageById: db.prepare('SELECT msg_id, sender_user_id, sender_device_id, to_kind, to_id, sent_at_ms FROM messages WHERE msg_id = ?'),
  senderOf: db.prepare('SELECT sender_user_id FROM messages WHERE msg_id = ?').pluck(),
  copiesOf: db.prepare('SELECT user_id, version FROM inbox WHERE kind = 1 AND msg_id = ?'),
  // by the partial index inbox_message_copies (msg_id) WHERE kind = 1
  copyVersion: db.prepare('SELECT version FROM inbox WHERE msg_id = ? AND kind = 1 AND user_id = ?').pluck(),
  insertReceipt: db.prepare('INSERT OR IGNORE INTO receipts (msg_id, by_user_id, status, created_at_ms) VALUES (?, ?, ?, ?)'),

  head: db.prepare('SELECT version FROM inbox_heads WHERE user_id = ?').pluck(),
  insertMessageEntry: db.prepare('INSERT INTO inbox (user_id, version, kind, msg_id, created_at_ms) VALUES (?, ?, 1, ?, ?)'),
  insertReceiptEntry: db.prepare('INSERT INTO inbox (user_id, version, kind, msg_id, code, actor_user_id, created_at_ms) VALUES (?, ?, 2, ?, ?, ?, ?)'),
  insertGroupEntry: db.prepare(
    'INSERT INTO inbox (user_id, version, kind, group_id, code, actor_user_id, subject_user_id, name, created_at_ms) VALUES (?, ?, 3, ?, ?, ?, ?, ?, ?)',
  ),
  readInbox: db.prepare(`
    SELECT i.version, i.kind, i.msg_id, i.group_id, i.code, i.actor_user_id, i.subject_user_id, i.name, i.created_at_ms,
           m.sender_user_id, m.sender_device_id, m.client_msg_id, m.to_kind, m.to_id, m.body, m.sent_at_ms
    FROM inbox i LEFT JOIN messages m ON i.kind = 1 AND m.msg_id = i.msg_id
    WHERE i.user_id = ? AND i.version > ?
    ORDER BY i.version
    LIMIT ?`).raw(),

  // [msg_id, sender_user_id] of the messages from others in versions (after, upTo]
  heldFromOthers: db.prepare(`
    SELECT i.msg_id, m.sender_user_id
    FROM inbox i JOIN messages m ON m.msg_id = i.msg_id
    WHERE i.user_id = ? AND i.version > ? AND i.version <= ? AND i.kind = 1 AND m.sender_user_id <> ?
    ORDER BY i.version`).raw(),

  getCursor: db.prepare('SELECT version FROM device_cursors WHERE device_id = ?').pluck(),
  setCursor: db.prepare('INSERT INTO device_cursors (device_id, version) VALUES (?, ?) ON CONFLICT (device_id) DO UPDATE SET version = excluded.version'),

  // Retention (sqlite-prune.ts), in bounded steps. Per inbox: its head, oldest version and
  // that entry's time, each one index seek on the primary key.
  inboxesAfter: db.prepare(`
    SELECT h.user_id, h.version,
           (SELECT version FROM inbox WHERE user_id = h.user_id ORDER BY version LIMIT 1),
           (SELECT created_at_ms FROM inbox WHERE user_id = h.user_id ORDER BY version LIMIT 1)
    FROM inbox_heads h WHERE h.user_id > ? ORDER BY h.user_id LIMIT ?`).raw(),
  // the oldest entries of an inbox up to a version, at most `limit`
  deleteUpTo: db.prepare(`
    DELETE FROM inbox WHERE user_id = @userId
      AND version IN (SELECT version FROM inbox WHERE user_id = @userId AND version <= @upTo ORDER BY version LIMIT @limit)
    RETURNING kind, msg_id`).raw(),
  // the oldest entries of an inbox written before olderThanMs, up to the first one that was
  // not, within the `limit` versions from the oldest (versions are contiguous), so a step
  // looks at no more rows than it may delete however long the old backlog
  deleteOldPrefix: db.prepare(`
    WITH first AS (SELECT min(version) AS v FROM inbox WHERE user_id = @userId)
    DELETE FROM inbox WHERE user_id = @userId
      AND version >= (SELECT v FROM first)
      AND version < coalesce(
        (SELECT version FROM inbox WHERE user_id = @userId
           AND version >= (SELECT v FROM first) AND version < (SELECT v FROM first) + @limit
           AND created_at_ms >= @olderThanMs
         ORDER BY version LIMIT 1),
        (SELECT v FROM first) + @limit)
    RETURNING kind, msg_id`).raw(),
  oldestAtMs: db.prepare('SELECT created_at_ms FROM inbox WHERE user_id = ? ORDER BY version LIMIT 1').pluck(),
  // sent_at_ms of a message no inbox entry holds a copy of (undefined if it has one, or is gone)
  orphanSentAt: db.prepare('SELECT sent_at_ms FROM messages WHERE msg_id = @msgId AND NOT EXISTS (SELECT 1 FROM inbox WHERE kind = 1 AND msg_id = @msgId)').pluck(),
  // its receipts go by ON DELETE CASCADE
  deleteMessage: db.prepare('DELETE FROM messages WHERE msg_id = ?'),
  // An orphan kept for de-duplication needs its ids, not its text.
  keepOrphan: db.prepare('INSERT OR IGNORE INTO orphaned_messages (sent_at_ms, msg_id) VALUES (?, ?)'),
  clearBody: db.prepare("UPDATE messages SET body = '' WHERE msg_id = ?"),
  orphansSentBefore: db.prepare('SELECT sent_at_ms, msg_id FROM orphaned_messages WHERE sent_at_ms < ? ORDER BY sent_at_ms LIMIT ?').raw(),
  forgetOrphan: db.prepare('DELETE FROM orphaned_messages WHERE sent_at_ms = ? AND msg_id = ?'),
})

export type MessageQueries = ReturnType<typeof prepareMessageQueries>

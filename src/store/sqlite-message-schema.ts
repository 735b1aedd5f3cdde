/**
 * The messaging tables of pigeon.db (contacts, groups, messages, inboxes, receipts, device
 * cursors): MESSAGE_MIGRATIONS follow the account ones. Everything that opens pigeon.db
 * passes SQLITE_MIGRATIONS (see sqlite-message-store.ts for how the tables are used).
 */
import { ACCOUNT_MIGRATIONS, type Migration } from './sqlite-account-store.js'

export const MESSAGE_MIGRATIONS: readonly Migration[] = [
  {
    // Follows ACCOUNT_MIGRATIONS (version 1); a later account migration must come after these.
    version: 2,
    name: 'messaging: contacts, groups, messages, inboxes, receipts, device cursors',
    up(db) {
      db.exec(`
        CREATE TABLE contacts (
          user_id INTEGER NOT NULL REFERENCES users(user_id),
          contact_user_id INTEGER NOT NULL REFERENCES users(user_id),
          created_at_ms INTEGER NOT NULL,
          PRIMARY KEY (user_id, contact_user_id)
        ) WITHOUT ROWID;

        CREATE TABLE groups (
          group_id INTEGER PRIMARY KEY AUTOINCREMENT,
          name TEXT NOT NULL,
          created_by_user_id INTEGER NOT NULL REFERENCES users(user_id),
          created_at_ms INTEGER NOT NULL
        );

        CREATE TABLE group_members (
          group_id INTEGER NOT NULL REFERENCES groups(group_id),
          user_id INTEGER NOT NULL REFERENCES users(user_id),
          joined_at_ms INTEGER NOT NULL,
          PRIMARY KEY (group_id, user_id)
        ) WITHOUT ROWID;
        CREATE INDEX group_members_by_user ON group_members(user_id, group_id);

        -- to_kind: 1 user, 2 group. AUTOINCREMENT: ids of pruned messages are never reused.
        CREATE TABLE messages (
          msg_id INTEGER PRIMARY KEY AUTOINCREMENT,
          sender_user_id INTEGER NOT NULL REFERENCES users(user_id),
          sender_device_id INTEGER NOT NULL,
          client_msg_id BLOB NOT NULL,
          to_kind INTEGER NOT NULL CHECK (to_kind IN (1, 2)),
          to_id INTEGER NOT NULL,
          body TEXT NOT NULL,
          sent_at_ms INTEGER NOT NULL,
          UNIQUE (sender_user_id, client_msg_id)
        );

        -- The last version ever assigned in each inbox (survives pruning).
        CREATE TABLE inbox_heads (
          user_id INTEGER PRIMARY KEY REFERENCES users(user_id),
          version INTEGER NOT NULL
        );

        -- kind 1 message: msg_id.
        -- kind 2 receipt: msg_id, code = status (1 delivered, 2 read), actor_user_id = by.
        -- kind 3 group event: group_id, code = event (1 created, 2 joined, 3 left, 4 renamed),
        --   actor_user_id, subject_user_id, name.
        -- msg_id has no foreign key: a receipt row outlives a pruned message.
        CREATE TABLE inbox (
          user_id INTEGER NOT NULL REFERENCES users(user_id),
          version INTEGER NOT NULL,
          kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
          msg_id INTEGER,
          group_id INTEGER REFERENCES groups(group_id),
          code INTEGER,
          actor_user_id INTEGER,
          subject_user_id INTEGER,
          name TEXT,
          created_at_ms INTEGER NOT NULL,
          PRIMARY KEY (user_id, version)
        ) WITHOUT ROWID;
        -- The copies of a message: versions of a duplicate, orphan check when pruning.
        CREATE INDEX inbox_message_copies ON inbox(msg_id) WHERE kind = 1;

        CREATE TABLE receipts (
          msg_id INTEGER NOT NULL REFERENCES messages(msg_id) ON DELETE CASCADE,
          by_user_id INTEGER NOT NULL,
          status INTEGER NOT NULL,
          created_at_ms INTEGER NOT NULL,
          PRIMARY KEY (msg_id, by_user_id, status)
        ) WITHOUT ROWID;

        CREATE TABLE device_cursors (
          device_id INTEGER PRIMARY KEY,
          version INTEGER NOT NULL
        );
      `)
    },
  },
  {
    version: 3,
    name: 'messaging: messages whose inbox copies were all pruned, kept for de-duplication',
    up(db) {
      // Ordered by time so retention finds the ones old enough to forget without a scan; no
      // foreign key (a cascade would scan this table for every deleted message).
      db.exec(`
        CREATE TABLE orphaned_messages (
          sent_at_ms INTEGER NOT NULL,
          msg_id INTEGER NOT NULL,
          PRIMARY KEY (sent_at_ms, msg_id)
        ) WITHOUT ROWID;
      `)
    },
  },
]

/** Everything pigeon.db holds: pass this as `migrations` to open the shared database. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [...ACCOUNT_MIGRATIONS, ...MESSAGE_MIGRATIONS]

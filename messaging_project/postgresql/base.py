"""Django's PostgreSQL backend, told how many parameters a statement may carry.

With parameters bound on the server (settings: DATABASE_PREPARED_STATEMENTS), PostgreSQL's protocol counts a
statement's parameters in 16 bits, and Django's PostgreSQL backend does not know it: deleting more than 65,535
contacts (the collector lists them all in one `IN`) or a `bulk_create` of 5,000 rows of 20 fields failed with
"number of parameters must be between 0 and 65535". Given the limit, Django splits those statements into
batches, as it does for its Oracle and SQLite backends.
"""

from django.db.backends.postgresql import base, features, operations
from django.db.models import CompositePrimaryKey


class DatabaseFeatures(features.DatabaseFeatures):
    max_query_params = 2**16 - 1


class DatabaseOperations(operations.DatabaseOperations):
    def bulk_batch_size(self, fields, objs):
        columns = sum(len(field.fields) if isinstance(field, CompositePrimaryKey) else 1 for field in fields)
        if columns:
            return self.connection.features.max_query_params // columns
        return len(objs)


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
    ops_class = DatabaseOperations

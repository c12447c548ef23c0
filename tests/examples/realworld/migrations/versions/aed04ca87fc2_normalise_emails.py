"""normalise e-mail addresses

Revision ID: aed04ca87fc2
Revises: bfb65bae2d26
Create Date: 2023-05-02 16:21:48.004733

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'aed04ca87fc2'
down_revision = 'bfb65bae2d26'
branch_labels = None
depends_on = None


def upgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, email FROM users ORDER BY id")).fetchall()
    seen = set()
    for user_id, email in rows:
        normal = email.strip().lower()
        if normal in seen:
            # duplicates were resolved by hand in production; keep them distinct here
            normal = f"dup{user_id}+{normal}"
        seen.add(normal)
        if normal != email:
            conn.execute(
                sa.text("UPDATE users SET email = :email WHERE id = :id"),
                {"email": normal, "id": user_id},
            )


def downgrade():
    pass  # the original capitalisation is gone

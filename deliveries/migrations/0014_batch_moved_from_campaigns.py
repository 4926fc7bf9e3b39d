import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """Batch moved here from campaigns (its table keeps its name); Message's template and batch point at the
    models' new apps."""

    dependencies = [
        ('campaigns', '0008_campaign_steps'),
        ('content', '0001_initial'),
        ('deliveries', '0013_staff_roles'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are: only Django's idea of which app the models belong to changes.
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name='message',
                    name='template',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='messages', to='content.messagetemplate'),
                ),
                migrations.CreateModel(
                    name='Batch',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('api', 'API batch'), ('csv', 'send_bulk (CSV)')], max_length=10)),
                        ('key', models.CharField(blank=True, max_length=200, null=True, unique=True)),
                        ('file_name', models.CharField(blank=True, max_length=500)),
                        ('file_hash', models.CharField(blank=True, help_text='SHA-256 of the CSV file.', max_length=64)),
                        ('accepted', models.PositiveIntegerField(default=0)),
                        ('rejected', models.PositiveIntegerField(default=0)),
                        ('response', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('finished_at', models.DateTimeField(blank=True, null=True)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='deliveries.apikey')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('idempotency_key', models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='batch', to='deliveries.idempotencykey')),
                    ],
                    options={
                        'verbose_name_plural': 'batches',
                        'db_table': 'campaigns_batch',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.AlterField(
                    model_name='message',
                    name='batch',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='messages', to='deliveries.batch'),
                ),
            ],
        ),
    ]

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Templates and their translations, moved here from campaigns: their tables (created by campaigns'
    migrations, which this follows) keep their names."""

    initial = True

    dependencies = [
        ('campaigns', '0008_campaign_steps'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are: only Django's idea of which app the models belong to changes.
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='MessageTemplate',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('slug', models.SlugField(max_length=100, unique=True)),
                        ('channel', models.CharField(choices=[('sms', 'SMS'), ('email', 'Email'), ('whatsapp', 'WhatsApp'), ('messenger', 'Messenger')], max_length=20)),
                        ('language', models.CharField(default='en', help_text='Language of this version, used when no translation fits.', max_length=15)),
                        ('subject', models.CharField(blank=True, help_text='Email only.', max_length=255)),
                        ('body', models.TextField(blank=True, help_text='SMS or WhatsApp text; for an email, the text part (derived from the HTML when left empty).')),
                        ('html_body', models.TextField(blank=True, help_text='Email only: the HTML part.')),
                        ('variables', models.JSONField(blank=True, default=dict, help_text='Variables the template may use, with their defaults: {"first_name": null, "shop": "Tidings"}. null means required: a message missing it fails instead of being sent.')),
                        ('sample_context', models.JSONField(blank=True, default=dict, help_text='Sample values for the preview: {"first_name": "Ada"}.')),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        'db_table': 'campaigns_messagetemplate',
                        'ordering': ['name'],
                    },
                ),
                migrations.CreateModel(
                    name='MessageTemplateTranslation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('language', models.CharField(help_text="Language code, like 'fr' or 'pt-br'.", max_length=15)),
                        ('subject', models.CharField(blank=True, max_length=255)),
                        ('body', models.TextField(blank=True)),
                        ('html_body', models.TextField(blank=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('template', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='translations', to='content.messagetemplate')),
                    ],
                    options={
                        'db_table': 'campaigns_messagetemplatetranslation',
                        'ordering': ['language'],
                        'constraints': [models.UniqueConstraint(fields=('template', 'language'), name='template_translation_unique_language')],
                    },
                ),
            ],
        ),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("clusters", "0007_daemon_semantics")]

    operations = [
        migrations.AlterModelOptions(
            name="virtualservice",
            options={
                "ordering": ["director__name", "address", "port", "fwmark"],
                "permissions": [("change_external_check", "Can create or change external health-check commands")],
            },
        ),
        migrations.AddField(
            model_name="director",
            name="redis_password_sha256",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="SHA-256 of the agent's Redis password (director/acl.py); the password itself is shown once by manage.py director_credentials and stored nowhere here.",
                max_length=64,
            ),
        ),
    ]

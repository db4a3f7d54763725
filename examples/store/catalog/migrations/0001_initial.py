from django.db import migrations, models


def seed(apps, schema_editor):
    Product = apps.get_model("catalog", "Product")
    Product.objects.bulk_create([Product(name="Blue teapot"), Product(name="Green kettle")])


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Product",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200)),
            ],
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
